"""The AWS calls a function's code makes, read from its source (no import, no AWS).

Used by ``test_infra_permissions.py``. Reads a handler module and the service module it uses
(the example's ``orders.py``): every ``<client>.<operation>(...)`` on a boto3 client, every
``provider.get(...)`` of powertools' SSM provider, followed through the methods they are called
from, starting at the handler module's functions. Returns IAM actions (``dynamodb:Scan``).
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import boto3

#: attribute names the example binds boto3 clients to -> the IAM service prefix
CLIENTS = {
    "dynamodb": "dynamodb",
    "sqs": "sqs",
    "s3": "s3",
    "ssm": "ssm",
    "kinesis": "kinesis",
    "lambda_": "lambda",
    "events": "events",
}
#: calls that are not boto3 operations but make one (powertools' SSMProvider.get)
INDIRECT = {("provider", "get"): "ssm:GetParameter"}
#: operations whose IAM action is not named like the operation (the service authorization
#: reference): ``s3:HeadObject`` is allowed by ``s3:GetObject``, ...
IAM_ACTION = {
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
    "s3:HeadBucket": "s3:ListBucket",
    "lambda:Invoke": "lambda:InvokeFunction",
}


@functools.cache
def operations(service: str) -> dict[str, str]:
    """boto3 method name -> API operation name, from botocore's model of ``service``."""
    client = boto3.session.Session().client(service, region_name="us-east-1")
    return dict(client.meta.method_to_api_mapping)


def action(service: str, method: str) -> str:
    """``("dynamodb", "put_item")`` -> ``"dynamodb:PutItem"``: the IAM action a call needs.

    Raises ``KeyError`` for a method that is not one of the service's operations (a typo in
    the code, or a helper like ``get_paginator`` the reader does not follow).
    """
    operation = operations(service).get(method)
    if operation is None:
        raise KeyError(f"{service}.{method} is not a {service} operation")
    name = f"{service}:{operation}"
    return IAM_ACTION.get(name, name)


def _chain(node: ast.expr) -> tuple[str, ...]:
    """``self.modes.provider.get`` -> ``("self", "modes", "provider", "get")``; else ()."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return tuple(reversed(parts))
    return ()


def _calls(fn: ast.AST) -> Iterator[tuple[str, ...]]:
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            chain = _chain(node.func)
            if len(chain) >= 2:
                yield chain


class CodeCalls:
    """The methods of a code folder's classes, and the AWS actions reachable from a handler."""

    def __init__(self, folder: Path, service_module: str = "orders") -> None:
        tree = ast.parse((folder / f"{service_module}.py").read_text(encoding="utf-8"))
        self.folder = folder
        # method name -> its body, over every class of the service module (one namespace is
        # enough for the example: OrdersService and Modes share no method names but `get`)
        self.methods: dict[str, ast.AST] = {}
        self.classes: dict[str, dict[str, ast.AST]] = {}
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                members = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
                self.classes[node.name] = members
                self.methods.update(members)
        # self.<attr> = <Class>(...) in __init__: which attribute holds which class
        self.attr_class: dict[str, str] = {}
        for members in self.classes.values():
            init = members.get("__init__")
            for node in ast.walk(init) if init else ():
                if (
                    isinstance(node, ast.Assign)
                    and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Name)
                    and node.value.func.id in self.classes
                ):
                    for target in node.targets:
                        chain = _chain(target)
                        if len(chain) == 2:
                            self.attr_class[chain[1]] = node.value.func.id

    def _actions_of(self, body: ast.AST, receiver: str, seen: set[int]) -> set[str]:
        if id(body) in seen:
            return set()
        seen.add(id(body))
        out: set[str] = set()
        for chain in _calls(body):
            if chain[0] != receiver:
                continue
            rest = chain[1:]
            if len(rest) >= 2 and rest[-2] in CLIENTS:
                out.add(action(CLIENTS[rest[-2]], rest[-1]))
            elif len(rest) >= 2 and tuple(rest[-2:]) in INDIRECT:
                out.add(INDIRECT[tuple(rest[-2:])])
            elif len(rest) == 2 and rest[0] in self.attr_class:
                method = self.classes[self.attr_class[rest[0]]].get(rest[1])
                if method is not None:
                    out |= self._actions_of(method, "self", seen)
            elif len(rest) == 1 and rest[0] in self.methods:
                out |= self._actions_of(self.methods[rest[0]], "self", seen)
        return out

    def handler_actions(self, handler: str, receiver: str = "service") -> set[str]:
        """The actions the handler module's functions reach through ``receiver``."""
        module = handler.rpartition(".")[0]
        tree = ast.parse((self.folder / f"{module}.py").read_text(encoding="utf-8"))
        out: set[str] = set()
        seen: set[int] = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                out |= self._actions_of(node, receiver, seen)
        return out


def service_of(act: str) -> str:
    """``"dynamodb:Scan"`` -> ``"dynamodb"``."""
    return re.split(r":", act, maxsplit=1)[0]
