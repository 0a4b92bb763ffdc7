"""Fixtures for scripts/fuzz: real resources and the examples that name them.

A fuzzer cannot guess the ids of this cloud's image, servers or volumes, so
without help every server create and every attach is a 400 or a 404 and the
code behind them is never reached. This makes a server and two volumes in
the demo project and adds request examples naming them (and the seeded
cirros image and m1.tiny) to the documents; schemathesis sends each example
once and then reuses the ids it reads in responses.

It also takes the tokens and fetches the documents, so that scripts/fuzz
needs nothing but python3 besides schemathesis.

    fuzz_fixture.py token URL USER PASSWORD PROJECT -> prints a token
    fuzz_fixture.py make URL TOKEN                  -> prints the fixture as JSON
    fuzz_fixture.py doc API URL OUT FIXTURE         -> writes API's document with examples
    fuzz_fixture.py statuses NDJSON                 -> counts the statuses of a run's responses;
                                                       fails if none was a success (a dead token)
"""

import json
import sys
import time
import urllib.request


def call(method, url, token, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("X-Auth-Token", token)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def token(url, user, password, project):
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }
    }
    req = urllib.request.Request(
        f"{url}/identity/v3/auth/tokens",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        print(resp.headers["X-Subject-Token"])


def make(url, token):
    images = call("GET", f"{url}/image/v2/images?name=cirros", token)["images"]
    if not images:
        sys.exit("no cirros image")
    image = images[0]["id"]
    # No `networks`: below compute 2.37 Nova refuses the string forms; absent, the server gets a port.
    server = call(
        "POST",
        f"{url}/compute/v2.1/servers",
        token,
        {"server": {"name": "fuzz-fixture", "imageRef": image, "flavorRef": "1"}},
    )["server"]["id"]
    volumes = [
        call("POST", f"{url}/volume/v3/volumes", token, {"volume": {"size": 1, "name": f"fuzz-fixture-{i}"}})[
            "volume"
        ]["id"]
        for i in (1, 2)
    ]
    deadline = time.time() + 60
    while True:
        status = call("GET", f"{url}/compute/v2.1/servers/{server}", token)["server"]["status"]
        if status == "ACTIVE":
            break
        if status == "ERROR" or time.time() > deadline:
            sys.exit(f"the fixture server is {status}")
        time.sleep(0.5)
    print(json.dumps({"image": image, "flavor": "1", "server": server, "volumes": volumes}))


def set_example(doc, path, method, example):
    body = doc["paths"][path][method]["requestBody"]["content"]["application/json"]
    body["example"] = example


def with_examples(api, doc, fx):
    if api == "compute":
        set_example(
            doc,
            "/compute/v2.1/servers",
            "post",
            {"server": {"name": "fuzz-server", "imageRef": fx["image"], "flavorRef": fx["flavor"]}},
        )
        set_example(
            doc,
            "/compute/v2.1/servers/{id}/os-volume_attachments",
            "post",
            {"volumeAttachment": {"volumeId": fx["volumes"][0]}},
        )
    if api == "volume":
        for prefix in ("/volume/v3/{project_id}", "/volume/v3"):
            set_example(
                doc,
                f"{prefix}/attachments",
                "post",
                {
                    "attachment": {
                        "volume_uuid": fx["volumes"][1],
                        "instance_uuid": fx["server"],
                        "connector": {"host": "compute-1", "initiator": "iqn.fuzz"},
                    }
                },
            )
            set_example(doc, f"{prefix}/volumes", "post", {"volume": {"size": 1, "imageRef": fx["image"]}})
    return doc


def statuses(path):
    counts = {}

    def walk(o):
        if isinstance(o, dict):
            r = o.get("response")
            if "request" in o and isinstance(r, dict) and isinstance(r.get("status_code"), int):
                counts[r["status_code"]] = counts.get(r["status_code"], 0) + 1
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    with open(path) as f:
        for line in f:
            walk(json.loads(line))
    total = sum(counts.values())
    print(f"{total} responses: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    if not any(200 <= k < 300 for k in counts):
        sys.exit("no request succeeded: the token or the fixture is broken")


def main():
    if sys.argv[1] == "token":
        token(*sys.argv[2:6])
    elif sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "doc":
        api, url, dst, fixture = sys.argv[2:6]
        with urllib.request.urlopen(f"{url}/{api}/openapi.json", timeout=30) as resp:
            doc = json.load(resp)
        with open(fixture) as f:
            fx = json.load(f)
        with open(dst, "w") as f:
            json.dump(with_examples(api, doc, fx), f)
    elif sys.argv[1] == "statuses":
        statuses(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
