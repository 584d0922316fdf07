#!/usr/bin/env python3
"""Parses Prometheus text exposition from stdin with prometheus_client's parser (the reference one) and
prints its samples as JSON lines: {"name": ..., "labels": {...}, "value": ...}. Exits non-zero, with the
parser's complaint, on text it cannot read, or on a family whose samples do not follow its type."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
try:
    families = list(text_string_to_metric_families(text))
except Exception as e:  # the parser raises ValueError and friends on bad text
    sys.exit("parse-metrics: not valid exposition text: %s" % e)
for family in families:
    if family.type == "unknown":
        sys.exit("parse-metrics: %s has no TYPE line" % family.name)
    for s in family.samples:
        print(json.dumps({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value}))
