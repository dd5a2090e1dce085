#!/usr/bin/env bash
# Lints every CloudFormation template under infra/ with a pinned cfn-lint, installed from
# PyPI into a reusable virtualenv (${INFRA_VENV:-/tmp/stackpro-infra-venv}). Fails on any
# error or warning cfn-lint reports (exit status non-zero).
#
#   infra/check.sh              # lint infra/*.yaml
#   INFRA_VENV=~/.venvs/infra infra/check.sh
set -euo pipefail

CFN_LINT_VERSION="1.58.0"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${INFRA_VENV:-/tmp/stackpro-infra-venv}"

if [[ ! -x "${venv}/bin/python" ]]; then
    python3 -m venv "${venv}"
fi
installed="$("${venv}/bin/python" -m pip show cfn-lint 2>/dev/null | sed -n 's/^Version: //p' || true)"
if [[ "${installed}" != "${CFN_LINT_VERSION}" ]]; then
    "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
        "cfn-lint==${CFN_LINT_VERSION}"
fi

shopt -s nullglob
templates=("${here}"/*.yaml)
if (( ${#templates[@]} == 0 )); then
    echo "no templates under ${here}" >&2
    exit 1
fi

echo "cfn-lint $("${venv}/bin/cfn-lint" --version | awk '{print $2}') on ${#templates[@]} templates"
# cfn-lint exits 2 on errors, 4 on warnings (8 informational); any of them fails the check.
if "${venv}/bin/cfn-lint" --format parseable -- "${templates[@]}"; then
    echo "ok: no errors, no warnings"
else
    status=$?
    echo "cfn-lint failed (exit ${status})" >&2
    exit "${status}"
fi
