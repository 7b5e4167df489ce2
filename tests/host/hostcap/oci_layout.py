#!/usr/bin/env python3
"""Writes an OCI image layout for the oci host-capability tests, and the answers
Kubewarden gives for it.

Usage: oci_layout.py DIR ARCH
  DIR/layout    an OCI layout with tags "image" (one image manifest) and "multi" (an index
                with an arm64 entry first and an ARCH entry second); pushed by skopeo
  DIR/expect/   image.digest, multi.digest (the manifests' sha256), image.manifest,
                multi.manifest (oci-client's serialisation: its field order, unknown and
                null fields dropped, annotations sorted), image.config and multi.config
                ({"manifest","digest","config"}, the config's keys sorted)

The manifests are written with their fields in another order than oci-client's, with
unsorted annotations, an unknown field and a null one, so each rule is exercised.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

out, arch = sys.argv[1], sys.argv[2]
layout = os.path.join(out, "layout")
blobs = os.path.join(layout, "blobs", "sha256")
expect = os.path.join(out, "expect")
os.makedirs(blobs, exist_ok=True)
os.makedirs(expect, exist_ok=True)


def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def compact(v, sort=False):
    return json.dumps(v, separators=(",", ":"), sort_keys=sort, ensure_ascii=False)


def layer(text):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("hello.txt")
        data = text.encode()
        info.size, info.mtime = len(data), 0
        t.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def image(a, text):
    """An image for architecture a: (manifest bytes, expected serialisation, config value)."""
    config = {"os": "linux", "architecture": a, "rootfs": {"type": "layers", "diff_ids": []},
              "config": {"Env": ["PATH=/bin"], "Cmd": ["/hello"], "Labels": {"z": "1", "a": "2"}},
              "created": "2026-01-01T00:00:00Z"}
    cd, cs = put(compact(config).encode())
    ld, ls = put(layer(text))
    m = {"layers": [{"size": ls, "digest": ld, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                     "annotations": {"org.opencontainers.image.title": "hello.txt"}}],
         "config": {"digest": cd, "mediaType": "application/vnd.oci.image.config.v1+json", "size": cs,
                    "urls": None},
         "annotations": {"zz.last": "z", "aa.first": "a", "org.opencontainers.image.created": "2026-01-01"},
         "x-unknown": {"dropped": True},
         "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "schemaVersion": 2}
    body = compact(m).encode()
    want = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls,
                        "annotations": {"org.opencontainers.image.title": "hello.txt"}}],
            "annotations": {"aa.first": "a", "org.opencontainers.image.created": "2026-01-01", "zz.last": "z"}}
    return body, want, config


def write(name, text):
    with open(os.path.join(expect, name), "w") as f:
        f.write(text)


refs = []
# the single image
body, want, config = image(arch, "single")
dg, size = put(body)
refs.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": dg, "size": size,
             "annotations": {"org.opencontainers.image.ref.name": "image"}})
write("image.digest", dg)
write("image.manifest", compact(want))
write("image.config", '{"manifest":%s,"digest":"%s","config":%s}' % (compact(want), dg, compact(config, True)))

# the index: another architecture first, this host's second
other = "arm64" if arch != "arm64" else "amd64"
ob, _, _ = image(other, "other")
od, osz = put(ob)
hb, hwant, hconfig = image(arch, "host")
hd, hsz = put(hb)
index = {"manifests": [
            {"digest": od, "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": osz,
             "platform": {"os": "linux", "architecture": other, "variant": "v8"}},
            {"size": hsz, "platform": {"architecture": arch, "os": "linux", "os.features": ["f1"]},
             "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": hd,
             "annotations": {"b": "2", "a": "1"}}],
         "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
ib = compact(index).encode()
idg, isz = put(ib)
refs.append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idg, "size": isz,
             "annotations": {"org.opencontainers.image.ref.name": "multi"}})
iwant = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": od, "size": osz,
             "platform": {"architecture": other, "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": hd, "size": hsz,
             "platform": {"architecture": arch, "os": "linux", "os.features": ["f1"]},
             "annotations": {"a": "1", "b": "2"}}]}
write("multi.digest", idg)
write("multi.manifest", compact(iwant))
write("multi.config", '{"manifest":%s,"digest":"%s","config":%s}' % (compact(hwant), hd, compact(hconfig, True)))

with open(os.path.join(layout, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(layout, "index.json"), "w") as f:
    f.write(compact({"schemaVersion": 2, "manifests": refs}))
