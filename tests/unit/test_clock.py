"""The one time source: AWS time = origin + k * (wall - origin), shared through the environment."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from controller import clock
from controller.clock import Clock, from_environment
from controller.contract import ENV_TIME_ORIGIN, ENV_TIME_SCALE
from controller.errors import SpecError


def test_scaled_clock_runs_k_times_the_wall_from_the_shared_origin() -> None:
    wall = [2000.0]
    scaled = Clock(origin=1000.0, scale=10.0, wall_time=lambda: wall[0])
    assert scaled.now() == 11000.0  # 1000 wall seconds after the origin: 10,000 AWS seconds
    wall[0] += 3.0
    assert scaled.now() == 11030.0  # 3 wall seconds: Route 53's 3 x 10 s


def test_two_processes_on_one_environment_agree_on_the_aws_instant() -> None:
    """An epoch one process writes (a lease's expiry) is the same AWS instant to another."""
    origin = 1_700_000_000.0
    env = {ENV_TIME_ORIGIN: repr(origin), ENV_TIME_SCALE: "10"}
    code = "from controller import clock; print(clock.now())"
    before = from_environment(env).now()
    out = subprocess.run(
        [sys.executable, "-c", code], env={**env, "PATH": ""}, capture_output=True, check=True
    )
    after = from_environment(env).now()
    assert before <= float(out.stdout) <= after


def test_a_real_clock_gives_children_nothing_and_a_scaled_one_its_origin_and_k() -> None:
    assert Clock().environment() == {}
    assert from_environment(Clock(origin=5.0, scale=4.0).environment()) == Clock(5.0, 4.0)


def test_sleep_and_wait_take_aws_seconds_divided_by_k() -> None:
    previous = clock.current()
    clock.use(Clock(origin=0.0, scale=1000.0))
    try:
        started = clock.monotonic()
        clock.sleep(50.0)  # 0.05 s on the wall
        assert clock.monotonic() - started >= 50.0
        assert clock.wait(threading.Event(), 20.0) is False
        assert clock.wall(60.0) == pytest.approx(0.06)
    finally:
        clock.use(previous)


@pytest.mark.parametrize(
    ("env", "where"),
    [
        ({ENV_TIME_SCALE: "fast", ENV_TIME_ORIGIN: "1"}, ENV_TIME_SCALE),
        ({ENV_TIME_SCALE: "10"}, ENV_TIME_ORIGIN),
        ({ENV_TIME_SCALE: "10", ENV_TIME_ORIGIN: "x"}, ENV_TIME_ORIGIN),
    ],
)
def test_bad_clock_environment_is_one_line_naming_the_variable(
    env: dict[str, str], where: str
) -> None:
    with pytest.raises(SpecError) as caught:
        from_environment(env)
    assert where in str(caught.value)


@pytest.mark.parametrize("scale", [0.0, -2.0, float("nan")])
def test_a_scale_that_is_not_positive_is_refused(scale: float) -> None:
    with pytest.raises(SpecError, match="positive"):
        Clock(scale=scale)
