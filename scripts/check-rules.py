#!/usr/bin/env python3
"""Checks that the PrometheusRule and the plain rules file hold the same
alert groups, so the two forms of the project's alert rules cannot drift."""
import pathlib
import sys

import yaml

root = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
plain = yaml.safe_load((root / "k8s-upgrade.rules.yml").read_text())
operator = yaml.safe_load((root / "prometheus-rule.yaml").read_text())
if operator.get("kind") != "PrometheusRule" or operator.get("spec") != plain:
    sys.exit("deploy/prometheus/prometheus-rule.yaml and k8s-upgrade.rules.yml differ: update both")
names = [rule["alert"] for group in plain["groups"] for rule in group["rules"]]
print(f"alert rules in sync: {', '.join(names)}")
