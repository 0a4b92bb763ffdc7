"""Schemathesis hooks for scripts/fuzz.

Glance's image PATCH takes a JSON patch under its own media types; they are
JSON on the wire, so the fuzzer serializes them as JSON.
"""

import schemathesis

schemathesis.serializer.alias(
    ["application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"],
    "application/json",
)
