#!/usr/bin/env python3
"""Checks recorded answers of the orchestrator against its OpenAPI document.

  check-openapi.py OPENAPI.yaml ANSWERS.json

ANSWERS.json is a list of {"method", "route", "status", "content_type", "body"}
as a test recorded them from the real server. Each status must be documented
for its operation, the content type must match, and a JSON body must validate
against the documented schema (JSON Schema 2020-12, as OpenAPI 3.1 says).
Every operation of the document must have been exercised.
"""
import json
import sys

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

document = yaml.safe_load(open(sys.argv[1]))
answers = json.load(open(sys.argv[2]))
registry = Registry().with_resource("urn:openapi", Resource(contents=document, specification=DRAFT202012))


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        node = registry.resolver(base_uri="urn:openapi").lookup("urn:openapi" + node["$ref"]).contents
    return node


problems, exercised = [], set()
for answer in answers:
    method, route, status = answer["method"].lower(), answer["route"], str(answer["status"])
    operation = document["paths"].get(route, {}).get(method)
    where = f"{answer['method']} {route} -> {status}"
    if operation is None:
        problems.append(f"{where}: the operation is not documented")
        continue
    exercised.add((route, method))
    response = resolve(operation["responses"].get(status))
    if response is None:
        problems.append(f"{where}: status {status} is not documented")
        continue
    content = response.get("content", {})
    media = (answer.get("content_type") or "").split(";")[0].strip()
    if media not in content:
        problems.append(f"{where}: content type {media!r} not documented ({', '.join(content)})")
        continue
    schema = content[media].get("schema", {})
    if media == "application/json":
        body = json.loads(answer["body"])
        schema_with_base = {"$id": "urn:answer", "allOf": [schema]}
        validator = jsonschema.Draft202012Validator(
            json.loads(json.dumps(schema_with_base).replace('"$ref": "#', '"$ref": "urn:openapi#')),
            registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        for error in validator.iter_errors(body):
            problems.append(f"{where}: {error.message} at {list(error.absolute_path)}")
    for header in response.get("headers", {}):
        if header.lower() not in {h.lower() for h in answer.get("headers", [])}:
            problems.append(f"{where}: documented header {header} is missing")

for route, item in document["paths"].items():
    for method in item:
        if method in ("get", "post", "put", "delete", "patch") and (route, method) not in exercised:
            problems.append(f"{method.upper()} {route} was never exercised")

if problems:
    print("OpenAPI mismatches:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"{len(answers)} answers match the OpenAPI document; {len(exercised)} operations exercised")
