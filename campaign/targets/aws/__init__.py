"""The AWS target: a run on Terraform-provisioned EC2, watched through its journal in S3.

The only package that imports python-terraform or boto3's EC2/STS clients. Its seam, in the order a
run goes through it (flintrock style, provider-independent names):

  preflight  credentials (STS), the bucket (a probe object), the smoke gate, the commit pushed
  provision  terraform init + plan + apply in the run's own workspace (.campaign/aws/<run-id>/);
             the undo (destroy) is registered before apply starts
  start      nothing to do: the instance's userdata clones the commit and starts `campaign agent`
  watch      the run's journal in S3 until it ends, fails, or the deadline passes
  collect    the outputs, verified against the manifest
  teardown   terraform destroy, always (also after a failure, Ctrl-C or SIGTERM) unless --keep

Imported lazily by the CLI: `campaign plan` for the local target never loads it.
"""
