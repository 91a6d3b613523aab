"""Content Credentials (C2PA) for DFM's outputs: who signs (`identity`), what the manifest says
(`manifest`), embedding it into an MP4 (`sign`) and reading it back with validation (`read`).

    identity, created = resolve_identity(cert, key)      # the user's, or the local test chain
    with signed_output(out, manifest, identity, ingredient=...) as pending:
        write(pending.unsigned)
    read_credentials(out).state                          # "valid"

The C2PA library (`c2pa-python`) is imported only when signing or reading.
"""

from dfm.provenance.identity import SigningIdentity, default_config_dir, load_identity, resolve_identity
from dfm.provenance.manifest import dfm_record, edit_manifest, ingredient
from dfm.provenance.read import Credentials, read_credentials
from dfm.provenance.sign import SignedOutput, sign_video, signed_output

__all__ = [
    "Credentials",
    "SignedOutput",
    "SigningIdentity",
    "default_config_dir",
    "dfm_record",
    "edit_manifest",
    "ingredient",
    "load_identity",
    "read_credentials",
    "resolve_identity",
    "sign_video",
    "signed_output",
]
