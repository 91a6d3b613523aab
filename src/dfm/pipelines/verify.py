"""`dfm verify`: does this video say it was manipulated, by what, where, and can that be trusted?

Reads the file's Content Credentials (C2PA manifest, validated offline), DFM's sidecar `VIDEO.dfm.json`
when it lies beside the video (its input hash and edits must agree with the manifest, its output hash
with the file), and the container tags DFM writes. `VerifyReport.status`:

- "valid": credentials present, signature and hard binding intact, sidecar (if any) agrees -> exit 0;
- "none": no credentials in the file (a sidecar or tags may still say something)              -> exit 1;
- "invalid": credentials present but failing validation, or contradicted by the sidecar        -> exit 3.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfm.errors import InputError
from dfm.io.files import sha256_file
from dfm.pipelines.edit import sidecar_path
from dfm.provenance.identity import CHAIN_FILE, TEST_FOLDER, default_config_dir
from dfm.provenance.read import Credentials, read_credentials

EXIT_CODES = {"valid": 0, "none": 1, "invalid": 3}
# actions that change what a picture shows (C2PA's standard action names)
EDITING_ACTIONS = {"c2pa.edited", "c2pa.edited.metadata", "c2pa.filtered", "c2pa.color_adjustments",
                   "c2pa.cropped", "c2pa.drawing", "c2pa.resized", "c2pa.placed", "c2pa.removed",
                   "c2pa.transcoded", "c2pa.converted"}
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
SYNTHETIC_SOURCES = {"algorithmicMedia", "trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                     "algorithmicallyEnhanced", "compositeSynthetic", "composite", "dataDrivenMedia"}


@dataclass
class SidecarCheck:
    path: str
    agrees: bool
    problems: list[str] = field(default_factory=list)
    manipulated: bool | None = None
    input_sha256: str | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class VerifyReport:
    path: str
    status: str  # valid | none | invalid
    credentials: Credentials
    manipulated: bool | None  # None: nothing in or beside the file says either way
    tool: str | None
    intervals: list[str]
    input_sha256: str | None
    signed_by: str | None
    local_test_certificate: bool
    sidecar: SidecarCheck | None
    container_tags: dict[str, str]
    problems: list[str]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "status": self.status, "exit_code": self.exit_code,
            "manipulated": self.manipulated, "tool": self.tool, "intervals": self.intervals,
            "input_sha256": self.input_sha256, "signed_by": self.signed_by,
            "local_test_certificate": self.local_test_certificate,
            "signature": ("valid" if self.credentials.valid else "invalid") if self.credentials.present else None,
            "trusted": self.credentials.state == "trusted",
            "problems": self.problems,
            "sidecar": None if self.sidecar is None else self.sidecar.__dict__,
            "container_tags": self.container_tags,
            "credentials": self.credentials.to_dict(),
        }


def verify_video(video: str | os.PathLike, *, trust_anchors: str | None = None,
                 config_dir: str | os.PathLike | None = None) -> VerifyReport:
    """Check `video`'s credentials and its sidecar; `trust_anchors`: extra PEM roots to trust."""
    video = Path(video)
    if not video.is_file():
        raise InputError(f"{video} not found" if not video.exists() else f"{video} is not a file")
    cred = read_credentials(video, trust_anchors=trust_anchors)
    tags = _container_tags(video)
    if cred.state == "invalid" and cred.manifest is None and tags is None:
        raise InputError(f"{video} is not a video DFM can read ({cred.error})")
    problems = [f"{f['code']}: {f['explanation']}" for f in cred.failures]
    if cred.error and cred.state == "invalid":
        problems.append(f"the manifest cannot be read: {cred.error}")
    dfm = cred.dfm or {}
    edits = (dfm.get("edits") or {}).get("edits", [])
    sidecar = _check_sidecar(video, cred)
    status = {"valid": "valid", "trusted": "valid", "invalid": "invalid"}.get(cred.state, "none")
    if status == "valid" and sidecar is not None and not sidecar.agrees:
        status = "invalid"
    if status == "invalid" and sidecar is not None:
        problems += [f"sidecar: {p}" for p in sidecar.problems]
    manipulated = _manipulated(cred)
    if manipulated is None and sidecar is not None:
        manipulated = sidecar.manipulated
    if manipulated is None and tags and tags.get("dfm_manipulated") == "true":
        manipulated = True
    return VerifyReport(
        path=str(video), status=status, credentials=cred, manipulated=manipulated,
        tool=_tool(cred),
        intervals=([_interval(e) for e in edits] or _regions(cred)
                   or [_interval(e) for e in (sidecar.edits if sidecar else [])]),
        input_sha256=_input_hash(cred, sidecar, tags or {}),
        signed_by=_signed_by(cred), local_test_certificate=_is_local_test(cred, config_dir),
        sidecar=sidecar, container_tags=tags or {}, problems=problems,
    )


def _input_hash(cred: Credentials, sidecar: SidecarCheck | None, tags: dict[str, str]) -> str | None:
    """The input's SHA-256: signed (DFM's record, the parent ingredient) first, then the unsigned sources."""
    signed = [((cred.dfm or {}).get("input") or {}).get("sha256")]
    signed += [i.get("sha256") for i in cred.ingredients if i.get("relationship") == "parentOf"]
    unsigned = [sidecar.input_sha256 if sidecar else None, tags.get("dfm_input_sha256")]
    return next((h for h in signed + unsigned if h), None)


def _manipulated(cred: Credentials) -> bool | None:
    """What the manifest says: DFM's own record, an editing action, or a synthetic digital source type."""
    if not cred.present:
        return None
    if cred.dfm and cred.dfm.get("manipulated"):
        return True
    return any(a.get("action") in EDITING_ACTIONS
               or (a.get("digitalSourceType") or "").removeprefix(IPTC) in SYNTHETIC_SOURCES for a in cred.actions)


def _tool(cred: Credentials) -> str | None:
    for a in cred.actions:
        if a.get("action") in EDITING_ACTIONS and a.get("softwareAgent"):
            return str(a["softwareAgent"])
    return cred.claim_generator


def _signed_by(cred: Credentials) -> str | None:
    if not cred.signer:
        return None
    return f"{cred.signer}; issuer: {cred.issuer}" if cred.issuer else cred.signer


def _interval(edit: dict[str, Any]) -> str:
    what = edit.get("label") or "nudge"
    if edit.get("intensity") is not None:
        what += f" ({edit['intensity']})"
    if edit.get("nudges"):
        what += " " + ", ".join(f"{k} {float(v):+g}" for k, v in edit["nudges"].items())
    unit = " s" if edit.get("unit", "seconds") == "seconds" else ""
    prefix = "frames " if unit == "" else ""
    return f"{prefix}{_num(edit.get('start'))}-{_num(edit.get('end'))}{unit}: {what}"


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def _regions(cred: Credentials) -> list[str]:
    """Intervals named by standard C2PA regions (manifests other tools wrote)."""
    out = []
    for a in cred.actions:
        for change in a.get("changes") or []:
            for r in change.get("region", []):
                time = r.get("time") or {}
                frame = r.get("frame") or {}
                if time:
                    span = f"{time.get('start')}-{time.get('end')} s"
                elif frame:
                    span = f"frames {frame.get('start')}-{frame.get('end')}"
                else:
                    continue
                out.append(f"{span}: {change.get('description') or a.get('action')}")
    return out


def _is_local_test(cred: Credentials, config_dir: str | os.PathLike | None) -> bool:
    """Signed by this machine's DFM test certificate (compared by serial number)."""
    chain = Path(config_dir or default_config_dir()) / TEST_FOLDER / CHAIN_FILE
    if not cred.serial or not chain.exists():
        return False
    from cryptography import x509

    return str(x509.load_pem_x509_certificates(chain.read_bytes())[0].serial_number) == cred.serial


def _check_sidecar(video: Path, cred: Credentials) -> SidecarCheck | None:
    path = sidecar_path(video)
    if not path.exists():
        return None
    try:
        side = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return SidecarCheck(str(path), False, [f"cannot be read ({e})"])
    if not isinstance(side, dict):
        return SidecarCheck(str(path), False, ["is not a DFM sidecar (not a JSON object)"])
    problems = []
    input_sha = (side.get("input") or {}).get("sha256")
    output_sha = (side.get("output") or {}).get("sha256")
    if output_sha and output_sha != sha256_file(video):
        problems.append("its output hash is not this file's: the file changed after DFM wrote it")
    if cred.dfm:
        if input_sha != (cred.dfm.get("input") or {}).get("sha256"):
            problems.append("its input hash differs from the one in the credentials")
        if _numbers_as_floats(side.get("edits")) != _numbers_as_floats(cred.dfm.get("edits")):
            problems.append("its edits differ from those in the credentials")
    edits = (side.get("edits") or {}).get("edits", []) if isinstance(side.get("edits"), dict) else []
    return SidecarCheck(str(path), not problems, problems, manipulated=side.get("manipulated"), input_sha256=input_sha,
                        edits=[e for e in edits if isinstance(e, dict)])


def _numbers_as_floats(x: Any) -> Any:
    # the manifest stores numbers in CBOR: 2.0 may read back as 2
    if isinstance(x, dict):
        return {k: _numbers_as_floats(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_numbers_as_floats(v) for v in x]
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    return x


def _container_tags(video: Path) -> dict[str, str] | None:
    """The container's metadata tags (None: not a file FFmpeg can open)."""
    import av

    try:
        with av.open(str(video)) as c:
            return {str(k): str(v) for k, v in c.metadata.items()}
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        return None

