"""`dfm verify VIDEO [--json] [--trust PEM]`: read and validate a video's Content Credentials (C2PA) and
DFM sidecar, offline, and say on one screen whether it was manipulated, by what, where, from which input,
and whether the signature holds and whose it is.

Exit status: 0 valid credentials, 1 no credentials, 3 credentials that fail validation (the file was
changed after signing, or the sidecar contradicts them), 2 a user error (no such file).

`register(sub)` adds the command to the `dfm` parser (dfm.app.cli.main.build_parser, whose `add_parser`
also adds the common options).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dfm.errors import InputError

WIDTH = 14


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("verify", help="check a video's Content Credentials (C2PA) and DFM disclosure",
                       description="Read and validate the C2PA manifest (offline) and the .dfm.json sidecar. "
                                   "Exit 0: valid; 1: no credentials; 3: invalid (changed after signing).")
    p.add_argument("video", type=Path)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--trust", type=Path, default=None, metavar="PEM",
                   help="also trust these root certificates (PEM), e.g. your organisation's CA")
    p.set_defaults(handler=cmd_verify)
    return p


def cmd_verify(args: argparse.Namespace) -> int:
    from dfm.pipelines.verify import verify_video

    anchors = None
    if args.trust is not None:
        try:
            anchors = args.trust.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read the trust anchors {args.trust}: {e}") from None
    report = verify_video(args.video, trust_anchors=anchors)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(render(report)))
    return report.exit_code


def render(report) -> list[str]:
    """The one-screen summary."""
    cred = report.credentials
    name = Path(report.path).name
    if report.status == "valid":
        head = f"{name}: Content Credentials VALID" + (" (signer trusted)" if cred.state == "trusted" else "")
    elif report.status == "invalid":
        if any("hash" in f["code"].lower() for f in cred.failures):
            why = "the file was changed after it was signed"
        elif cred.valid:
            why = "the sidecar contradicts them"
        else:
            why = "the manifest is damaged" if cred.error else "they do not validate"
        head = f"{name}: Content Credentials INVALID: {why}"
    elif cred.state == "remote":
        head = f"{name}: no Content Credentials in the file (it points to a remote manifest, not fetched: {cred.remote_url})"
    else:
        head = f"{name}: no Content Credentials (no C2PA manifest in the file)"
    lines = [head]

    def row(key: str, text: str) -> None:
        lines.append(f"  {key:<{WIDTH}}{text}")

    for p in report.problems:
        row("problem", p)
    if report.manipulated is not None:
        said = next((a["description"] for a in cred.actions if a.get("description")), None)
        row("manipulated", ("yes" if report.manipulated else "no") + (f": {said}" if said else "")
            + ("" if cred.present else " (says the sidecar or container tags, unsigned)"))
    else:
        row("manipulated", "unknown: nothing in or beside the file says")
    if report.tool:
        row("tool", report.tool)
    for i, interval in enumerate(report.intervals):
        row("intervals" if i == 0 else "", interval)
    if report.input_sha256:
        parent = next((i for i in cred.ingredients if i.get("relationship") == "parentOf"), {})
        row("input", (f"{parent['title']}, " if parent.get("title") else "") + f"sha256 {report.input_sha256}"
            + ("; it carried Content Credentials of its own (kept in the chain)" if parent.get("credentials") else ""))
    if cred.present:
        sig = "valid" if cred.signature_valid else "INVALID"
        row("signature", f"{sig}, signed by {report.signed_by or 'unknown'}")
        if report.local_test_certificate:
            row("", "this is this machine's DFM test certificate, not a trusted authority")
        if cred.error is None:
            row("content", "CHANGED after signing (the hash in the manifest does not match)"
                if any("hash" in f["code"].lower() for f in cred.failures) else "matches what was signed")
        if cred.state == "trusted":
            row("trust", "the signer's certificate chains to a trusted root")
        elif cred.untrusted:
            row("trust", "the signer is on no trust list: anyone can make such a certificate")
        if not cred.signed_at:
            row("time", "no trusted timestamp (signed offline)")
        else:
            row("time", cred.signed_at)
    if report.sidecar is not None:
        side = Path(report.sidecar.path).name
        row("sidecar", f"{side} agrees (input hash, edits, output hash)" if report.sidecar.agrees
            else f"{side} DISAGREES: " + "; ".join(report.sidecar.problems))
    if report.container_tags.get("dfm_manipulated") == "true":
        row("container", "tags say: manipulated with DFM")
    return lines
