"""Reading Terraform files with python-hcl2 in the tests: plain values, as a user wrote them."""


def unquote(value):
    """Strip python-hcl2's quoting from strings, recursively, and drop its __line__ markers."""
    if isinstance(value, str):
        return value.strip('"')
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not k.startswith("__")}
    return value
