"""The error classes of the project; each carries the exit code `campaign` ends with.

Exit codes are decided here and only here (documented in the README):
  0   success
  1   internal error (a bug: please report it with the --debug traceback)
  2   bad input: campaign file, selection or command-line arguments
  3   preflight refused the run (uncommitted files, host or store not ready)
  4   a stage run failed (its exit code, timeout or missing outputs)
  5   store failure: an upload, download or verification that did not succeed
  6   `compare --fail-on-regression`: something is significantly slower or newly failing
  130 interrupted (Ctrl-C / SIGTERM)
"""


class CampaignError(Exception):
    """Base class: a failure the user can act on; its message says what and where."""

    exit_code = 1


class InputError(CampaignError):
    exit_code = 2


class PreflightRefused(CampaignError):
    exit_code = 3


class StageFailed(CampaignError):
    exit_code = 4


class StoreError(CampaignError):
    exit_code = 5


class NotInStore(StoreError):
    """The object does not exist in the store."""


class Conflict(StoreError):
    """A conditional write found the object changed (another agent holds or took the lease)."""


class Interrupted(CampaignError):
    exit_code = 130


class RegressionFound(CampaignError):
    """`compare --fail-on-regression`: some item is significantly slower, or newly failing."""

    exit_code = 6
