"""atheris harness for the wire target (see _targets.py).

Run: ``python tests/fuzz/fuzz_wire.py [libFuzzer args] [corpus dirs]``.
"""

from __future__ import annotations

import atheris

# Instrument the project (and asn1crypto, whose BER reader the CMS parser relies on) so that
# libFuzzer gets coverage feedback from the code under test.
with atheris.instrument_imports(include=["attestation", "enclave_kms", "asn1crypto"]):
    import _targets

if __name__ == "__main__":
    _targets.main("wire")
