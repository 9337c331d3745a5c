"""`python -m campaign.cli`: the same as the `campaign` command."""

from campaign.cli.main import console_main

console_main()
