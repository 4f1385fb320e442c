#!/bin/sh
# Seeds fuzz/corpus/parse_rule/ (gitignored) with the six example rules of RULES.md.
# Run from anywhere; existing corpus files are kept.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/corpus/parse_rule"
mkdir -p "$dir"
n=0
while IFS= read -r rule; do
    n=$((n + 1))
    printf '%s' "$rule" > "$dir/example_$n"
done <<'RULES'
region == "Area X" and count(product_purchased, 30d) == 0
device_type == "mobile" and count(page_viewed) >= 10 and last_seen() < now - 7d
country == "US" and count(added_to_cart, 7d) >= 1 and count(product_purchased, 7d) == 0
count(product_purchased, 30d) >= 3
device_type in ["desktop", "tablet"] and last_seen() >= now - 1d
traits.plan == "pro" and not (first_seen() > now - 14d)
RULES
echo "seeded $n examples into $dir"
