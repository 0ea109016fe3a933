#!/usr/bin/env bash
# camshard vs camshard (the comparison's sanity check: ratios should sit near 1.0): two identical
# `camshard --demo` servers on 8002 and 9002 compared by bench/compare.sh.
exec env LABEL="camshard vs camshard (sanity)" "$(dirname "$0")/compare-camshard.sh"
