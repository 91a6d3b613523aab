"""Read and validate the C2PA manifest of a file, offline: who signed it, what it says was done, whether
the file is still the one that was signed.

`read_credentials(path)` -> `Credentials` with `state`:
- "none": no C2PA manifest in the file;
- "remote": the file points to a manifest on the web (not fetched: verification here is offline);
- "invalid": a manifest is there but fails validation (the file was changed after signing, the signature
  does not match, or the manifest is damaged);
- "valid": the signature and the hard binding check out; the signer is not on a trust list;
- "trusted": valid, and the signer's certificate chains to a trust anchor (`trust_anchors` PEM adds some).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dfm.provenance.manifest import DFM_ASSERTION, SHA256_KEY
from dfm.provenance.sign import offline_settings

UNTRUSTED = "signingCredential.untrusted"


@dataclass
class Credentials:
    state: str  # none | remote | invalid | valid | trusted
    manifest: str | None = None
    claim_generator: str | None = None
    title: str | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    signer: str | None = None  # the signing certificate's common name
    issuer: str | None = None  # its organisation, as C2PA readers show it
    alg: str | None = None
    serial: str | None = None
    signed_at: str | None = None  # only with a trusted timestamp (DFM signs without one: offline)
    signature_valid: bool | None = None
    failures: list[dict[str, str]] = field(default_factory=list)  # code, explanation (not 'untrusted')
    untrusted: bool = False
    ingredients: list[dict[str, Any]] = field(default_factory=list)  # title, relationship, sha256, credentials
    dfm: dict[str, Any] | None = None  # DFM's own assertion (org.dfm.edit), when DFM made the file
    remote_url: str | None = None
    error: str | None = None  # why the manifest could not be read

    @property
    def present(self) -> bool:
        return self.state not in ("none", "remote")

    @property
    def valid(self) -> bool:
        return self.state in ("valid", "trusted")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_credentials(path: str | os.PathLike, trust_anchors: str | None = None) -> Credentials:
    """The file's Content Credentials, validated (see the module docstring for the states)."""
    import c2pa

    path = Path(path)
    context = c2pa.Context.from_dict(offline_settings(trust_anchors))
    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader.try_create(_mime(path), f, None, context)
            if reader is None:
                return Credentials(state="none")
            store = json.loads(reader.json())
    except c2pa.C2paError as e:
        message = " ".join(str(e).split())
        if type(e).__name__ == "_C2paRemoteManifest" or message.startswith("Remote:"):
            return Credentials(state="remote", remote_url=_url_in(message), error=message)
        return Credentials(state="invalid", error=message)
    return _from_store(store)


def _from_store(store: dict[str, Any]) -> Credentials:
    label = store.get("active_manifest")
    manifest = store.get("manifests", {}).get(label, {}) if label else {}
    results = store.get("validation_results", {}).get("activeManifest", {})
    failures = results.get("failure", []) if results else store.get("validation_status", [])
    successes = {s.get("code") for s in results.get("success", [])} if results else set()
    codes = {f.get("code") for f in failures}
    state = {"Trusted": "trusted", "Valid": "valid"}.get(store.get("validation_state", ""), "invalid")
    info = manifest.get("signature_info", {})
    generator = (manifest.get("claim_generator_info") or [{}])[0]
    assertions = {a.get("label"): a.get("data") for a in manifest.get("assertions", [])}
    actions = []
    for key in ("c2pa.actions.v2", "c2pa.actions"):
        for a in (assertions.get(key) or {}).get("actions", []):
            agent = a.get("softwareAgent")
            if isinstance(agent, dict):
                agent = " ".join(str(agent[k]) for k in ("name", "version") if agent.get(k))
            actions.append({"action": a.get("action"), "description": a.get("description"),
                            "digitalSourceType": a.get("digitalSourceType"), "softwareAgent": agent,
                            "changes": a.get("changes", [])})
    ingredients = [{"title": i.get("title"), "relationship": i.get("relationship"),
                    "sha256": (i.get("metadata") or {}).get(SHA256_KEY),
                    "credentials": i.get("active_manifest") is not None}
                   for i in manifest.get("ingredients", [])]
    return Credentials(
        state=state, manifest=label,
        claim_generator=" ".join(str(generator[k]) for k in ("name", "version") if generator.get(k)) or manifest.get("claim_generator"),
        title=manifest.get("title"), actions=actions,
        signer=info.get("common_name"), issuer=info.get("issuer"), alg=info.get("alg"),
        serial=info.get("cert_serial_number"), signed_at=info.get("time"),
        signature_valid=("claimSignature.validated" in successes) and not any(str(c).startswith("claimSignature") for c in codes),
        failures=[{"code": f.get("code", ""), "explanation": f.get("explanation", "")} for f in failures
                  if f.get("code") != UNTRUSTED],
        untrusted=UNTRUSTED in codes, ingredients=ingredients, dfm=assertions.get(DFM_ASSERTION),
    )


def _mime(path: Path) -> str | None:
    # None lets the library detect the container from the bytes
    return {".mp4": "video/mp4", ".m4v": "video/x-m4v", ".mov": "video/quicktime"}.get(path.suffix.lower())


def _url_in(message: str) -> str | None:
    for word in message.split():
        if word.startswith(("http://", "https://")):
            return word.rstrip(".,)")
    return None
