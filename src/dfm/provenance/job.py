"""Content Credentials for the outputs of one edit job: one signer, one manifest per output file.

    credentials = EditCredentials(identity, created, video=..., input_sha256=..., edits=..., seed=..., ...)
    with credentials.output(out) as unsigned:        # a temp path: write the finished MP4 there
        ...
    credentials.summary()                             # for the job report and the sidecar

Signing happens when the `with` block ends, after the whole file is written and before it appears at
its path, so whatever writes the video (one encoder, joined chunks, a lossless encode) the final file
always carries the credentials.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

from dfm.edits.model import EditList
from dfm.provenance.identity import SigningIdentity, resolve_identity
from dfm.provenance.manifest import dfm_record, edit_manifest, ingredient
from dfm.provenance.sign import SignedOutput, check_signer, signed_output


def resolve_signer(cert: str | os.PathLike | None = None, key: str | os.PathLike | None = None
                   ) -> tuple[SigningIdentity, bool]:
    """`resolve_identity`, and a user's certificate tried on a tiny file at once (InputError if C2PA
    rejects it), so a bad certificate fails before the job's work, not after it."""
    identity, created = resolve_identity(cert, key)
    if not identity.local_test:
        check_signer(identity)
    return identity, created


def local_test_warning(identity: SigningIdentity) -> str:
    return (f"outputs are signed with Content Credentials by a local test certificate made in "
            f"{identity.chain_path.parent}, "
            "not by a trusted authority: verifiers show the signature as valid but the signer as unknown "
            "(pass --sign-cert/--sign-key or set DFM_C2PA_CERT/DFM_C2PA_KEY to sign as yourself)")


class EditCredentials:
    """Signs every output of one edit job; `created`: the identity was just made (warn once)."""

    def __init__(self, identity: SigningIdentity, created: bool, *, video: str | os.PathLike, input_sha256: str,
                 edits: EditList, seed: int | None, disclosure: str, version: str) -> None:
        self.identity = identity
        self.video = Path(video)
        self.input_sha256 = input_sha256
        self.edits = edits
        self.seed = seed
        self.disclosure = disclosure
        self.version = version
        self.signed: list[SignedOutput] = []
        self.warnings = [local_test_warning(identity)] if created and identity.local_test else []

    @contextlib.contextmanager
    def output(self, path: str | os.PathLike, *, side_by_side: bool = False) -> Iterator[Path]:
        path = Path(path)
        record = dfm_record(disclosure=self.disclosure, input_name=self.video.name, input_sha256=self.input_sha256,
                            edits=self.edits, seed=self.seed, version=self.version, side_by_side=side_by_side)
        manifest = edit_manifest(title=path.name, record=record, edits=self.edits, version=self.version)
        with signed_output(path, manifest, self.identity, ingredient=ingredient(self.video.name, self.input_sha256),
                           ingredient_file=self.video) as pending:
            yield pending.unsigned
        assert pending.result is not None
        self.signed.append(pending.result)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.signed)

    def summary(self) -> dict[str, Any]:
        """What the report and the sidecar say about the credentials."""
        return {
            "c2pa": bool(self.signed),
            "manifests": {str(s.path): s.manifest for s in self.signed},
            "signer": self.identity.subject,
            "issuer": self.identity.issuer,
            "alg": self.identity.alg,
            "local_test_certificate": self.identity.local_test,
        }
