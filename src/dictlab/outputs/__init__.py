"""Output folders: the identity of the run that wrote them, an exclusive lock, and claiming one safely."""

from dictlab.outputs.claim import OutputError, check_output, claim_output, read_identity, staged
from dictlab.outputs.identity import RUN_FILE, RunIdentity, file_fingerprint, folder_fingerprints, json_fingerprint
from dictlab.outputs.lock import FolderLocked, folder_lock

__all__ = [
    "RUN_FILE",
    "FolderLocked",
    "OutputError",
    "RunIdentity",
    "check_output",
    "claim_output",
    "file_fingerprint",
    "folder_fingerprints",
    "folder_lock",
    "json_fingerprint",
    "read_identity",
    "staged",
]
