"""An S3 bucket: exists and is versioned (replication needs versioning).

One call reads both: ``GetBucketVersioning`` answers ``NoSuchBucket`` for a bucket that is not
there, so no ``HeadBucket`` is asked first.
"""

from __future__ import annotations

from controller.actions.base import Observed, PassiveAction, State, is_not_found, missing


class BucketAction(PassiveAction):
    """Read a bucket's existence and versioning."""

    kind = "bucket"

    def _read(self) -> Observed:
        s3 = self.clients.client("s3", self.region)
        try:
            versioning = s3.get_bucket_versioning(Bucket=self.ref.name).get("Status", "")
        except Exception as exc:
            if is_not_found(exc):
                return missing(f"bucket {self.ref.name}")
            raise
        facts = {"versioning": versioning}
        if getattr(self.spec, "versioning", True) and versioning != "Enabled":
            return Observed(State.ACTIVE, healthy=False, detail="versioning off", facts=facts)
        return Observed(State.ACTIVE, facts=facts)
