"""Embed a signed C2PA manifest into an MP4 (the C2PA project's `c2pa-python` bindings), offline.

    with signed_output(out, manifest, identity, ingredient=ingredient(...), ingredient_file=video) as pending:
        write_the_video(pending.unsigned)          # the finished, unsigned MP4
    pending.result                                  # SignedOutput: manifest label, signer, seconds

The signed file appears at `out` only when signing succeeded (temp file + rename), so an output never
exists without its credentials. The manifest's hard binding (`c2pa.hash.bmff`) hashes the whole file
except the manifest box: any change to the video or audio payload afterwards makes validation fail.
Nothing here reaches the network: no timestamp authority, no OCSP, no remote manifests, and the
library's list of allowed network hosts is empty.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from dfm.errors import DfmError, InputError
from dfm.io.files import atomic_output, temp_prefix
from dfm.provenance.identity import SigningIdentity
from dfm.provenance.memory import release_free_memory

MP4 = "video/mp4"
# While it embeds a manifest the library keeps an intermediate copy of the whole asset; above this size
# that copy is a temporary file (in the system's temp folder) instead of memory, so signing a long video
# needs about one file's size of memory on top of the job's instead of two (measured: 155 MB MP4, +152 MB
# peak RSS vs about +310 MB). The bytes written, hashed and signed are the same either way.
BACKING_STORE_MB = 16


def offline_settings(trust_anchors: str | None = None) -> dict[str, Any]:
    """c2pa settings for DFM: no network of any kind; no thumbnails (none for video, and not wanted);
    large assets staged in a temporary file while signing (BACKING_STORE_MB)."""
    settings: dict[str, Any] = {
        "core": {"allowed_network_hosts": [], "backing_store_memory_threshold_in_mb": BACKING_STORE_MB},
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
        "builder": {"thumbnail": {"enabled": False}},
    }
    if trust_anchors:
        settings["trust"] = {"user_anchors": trust_anchors}
    return settings


@dataclass
class SignedOutput:
    """What was embedded: where, under which manifest label, signed by whom."""

    path: Path
    manifest: str  # the active manifest's label (urn:c2pa:...)
    signer: str
    issuer: str
    alg: str
    local_test_certificate: bool
    seconds: float


@dataclass
class PendingOutput:
    unsigned: Path  # write the finished video here
    result: SignedOutput | None = None


@contextlib.contextmanager
def signed_output(path: str | os.PathLike, manifest: Mapping[str, Any], identity: SigningIdentity, *,
                  ingredient: Mapping[str, Any], ingredient_file: str | os.PathLike | None = None
                  ) -> Iterator[PendingOutput]:
    """Yield a temporary path for the unsigned video; when the block succeeds, sign it into `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # pid-named like dfm.io.files' temporaries, so the next write of `path` deletes it after a SIGKILL
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp.unsigned.mp4")
    os.close(fd)
    pending = PendingOutput(Path(tmp))
    try:
        yield pending
        release_free_memory()  # the signer buffers ~2x the file: give it the heap the finished work left free
        pending.result = sign_video(pending.unsigned, path, manifest, identity, ingredient=ingredient,
                                    ingredient_file=ingredient_file)
    finally:
        pending.unsigned.unlink(missing_ok=True)


def sign_video(source: str | os.PathLike, dest: str | os.PathLike, manifest: Mapping[str, Any],
               identity: SigningIdentity, *, ingredient: Mapping[str, Any],
               ingredient_file: str | os.PathLike | None = None) -> SignedOutput:
    """Write `source` (an MP4) to `dest` (atomically) with `manifest` signed by `identity` embedded.

    ingredient: the parent ingredient's JSON (title, relationship parentOf, metadata); with
    `ingredient_file` in a format the library reads, its own Content Credentials (if any) are kept as
    the ingredient's, so the provenance chain continues.
    """
    import c2pa

    source, dest = Path(source), Path(dest)
    t = time.perf_counter()
    try:
        context = c2pa.Context.from_dict(offline_settings())
        builder = _builder(c2pa, context, manifest, ingredient, ingredient_file)
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(identity.alg, identity.chain_pem, identity.key_pem, None))
        with atomic_output(dest, suffix=".mp4") as tmp:
            with open(source, "rb") as src, open(tmp, "w+b") as dst:
                builder.sign(signer, MP4, src, dst)
            with open(tmp, "rb") as f:
                label = json.loads(c2pa.Reader(MP4, f, context=context).json())["active_manifest"]
    except c2pa.C2paError as e:
        raise DfmError(f"could not sign {dest.name} with Content Credentials ({identity.chain_path}, {identity.key_path}): "
                       f"{_one_line(str(e))}") from None
    return SignedOutput(path=dest, manifest=label, signer=identity.subject, issuer=identity.issuer, alg=identity.alg,
                        local_test_certificate=identity.local_test, seconds=time.perf_counter() - t)


def check_signer(identity: SigningIdentity) -> None:
    """Sign a two-frame MP4 with `identity` now, so a certificate C2PA rejects (a self-signed one, one
    without the digitalSignature key usage or a signing EKU, an expired one) fails before a long job."""
    import av
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="dfm-c2pa-check-") as folder:
        probe = Path(folder) / "probe.mp4"
        with av.open(str(probe), mode="w") as out:
            stream = out.add_stream("libx264", rate=2)
            stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
            for _ in range(2):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")))
            out.mux(stream.encode())
        manifest = {"claim_generator_info": [{"name": "dfm", "version": "check"}], "assertions": []}
        try:
            sign_video(probe, Path(folder) / "signed.mp4", manifest, identity,
                       ingredient={"title": "probe.mp4", "relationship": "parentOf", "format": MP4})
        except DfmError as e:
            raise InputError(f"the certificate {identity.chain_path} cannot sign Content Credentials: "
                             f"{str(e).split(': ', 1)[-1]}") from None


def _builder(c2pa, context, manifest: Mapping[str, Any], ingredient: Mapping[str, Any],
             ingredient_file: str | os.PathLike | None):
    """A Builder with the parent ingredient read from its file where the library can (keeping the input's
    own credentials), else described by its JSON alone (other containers, or a file it cannot parse)."""
    if ingredient_file is not None and Path(ingredient_file).suffix.lower() in _C2PA_VIDEO:
        builder = c2pa.Builder(dict(manifest), context=context)
        builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
        try:
            with open(ingredient_file, "rb") as f:
                builder.add_ingredient(dict(ingredient), _C2PA_VIDEO[Path(ingredient_file).suffix.lower()], f)
            return builder
        except c2pa.C2paError:
            builder.close()
    builder = c2pa.Builder({**manifest, "ingredients": [dict(ingredient)]}, context=context)
    builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
    return builder


_C2PA_VIDEO = {".mp4": "video/mp4", ".m4v": "video/x-m4v", ".mov": "video/quicktime", ".avi": "video/avi"}


def _one_line(text: str) -> str:
    return " ".join(text.split())
