"""Checks against a real AWS account: skipped, with the reason shown, unless CAMPAIGN_REAL_AWS=1.

They spend money (a small instance for a few minutes) and need: working credentials (`campaign doctor`),
Terraform on PATH, and the repository's HEAD pushed to a remote the instance can clone over HTTPS.
Optional: CAMPAIGN_REAL_AWS_INSTANCE_TYPE (default t3.large), CAMPAIGN_REAL_AWS_SELECTION (sf0.01).
"""

from __future__ import annotations

import os

import pytest

REAL_AWS = os.environ.get("CAMPAIGN_REAL_AWS") == "1"


@pytest.fixture(autouse=True)
def real_aws_only(request):
    if not REAL_AWS:
        pytest.skip("needs a real AWS account and spends money: set CAMPAIGN_REAL_AWS=1 to run infra-validation/")
