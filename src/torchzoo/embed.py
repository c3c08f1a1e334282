"""``torchzoo embed``: a ready bundle for a JavaScript app from a verified artifact (torch-free).

The bundle holds the graph and the manifest as exported (byte for byte, so the JS client and the Python
runtime both verify them), the JS client (``torchzoo-client.mjs``), a ``package.json`` naming onnxruntime,
a README with a Node and a web snippet for this model, and a web page (``index.html``).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from torchzoo import js_client
from torchzoo.core import artifact
from torchzoo.core.errors import ArtifactError, UserInputError
from torchzoo.core.tensor_spec import smallest_shape

CLIENT_FILE = "torchzoo-client.mjs"
ORT_VERSION = "1.30.0"
BUNDLE_FILES = (artifact.ONNX, artifact.MANIFEST, CLIENT_FILE, "package.json", "README.md", "index.html")


def verified_manifest(directory: Path) -> dict[str, Any]:
    """The artifact's manifest, once the manifest, the graph and the graph's equivalence check hold."""
    manifest = artifact.read_manifest(directory)
    artifact.verify_file(directory, manifest, artifact.ONNX)
    onnx = manifest.get("formats", {}).get("onnx", {})
    if onnx.get("equivalence") != "passed":
        raise ArtifactError(
            f"{directory}: the ONNX graph has no passed equivalence check; run 'torchzoo export {manifest['model']}'"
        )
    return manifest


#: the JavaScript typed array of each manifest dtype (the client's TYPED_ARRAYS)
TYPED_ARRAYS = {
    "float32": "Float32Array",
    "float64": "Float64Array",
    "int64": "BigInt64Array",
    "int32": "Int32Array",
    "bool": "Uint8Array",
}


def _zeros(manifest: dict[str, Any], spec: dict[str, Any]) -> str:
    shape = smallest_shape(manifest, spec)
    return f"{{ data: new {TYPED_ARRAYS[spec['dtype']]}({math.prod(shape)}), shape: {json.dumps(shape)} }}"


def example_input(manifest: dict[str, Any]) -> str:
    """A JavaScript expression of one input this model takes."""
    pre = manifest["preprocessing"]
    if pre["kind"] == "tensors":
        return "{ " + ", ".join(f"{json.dumps(s['name'])}: {_zeros(manifest, s)}" for s in manifest["inputs"]) + " }"
    if pre["kind"] == "names_one_hot":
        return '"Rossi"'
    if pre["kind"] == "image":
        channels = 1 if pre["mode"] == "L" else 3
        height, width = pre["size"]
        return f"{{ data: new Uint8Array({channels * height * width}), shape: [1, {channels}, {height}, {width}] }}"
    return json.dumps(",".join(["0"] * int(pre["n_features"])))


def readme(manifest: dict[str, Any]) -> str:
    name, example = manifest["model"], example_input(manifest)
    pre = manifest["preprocessing"]
    what = {
        "names_one_hot": "names (strings); accents are folded, other characters are refused",
        "image": f"pixels at the model's size ({pre.get('mode')}, {pre.get('size')}): a Uint8Array of C*H*W, "
        "an ImageData, or {data, shape}",
        "features": f"rows of {pre.get('n_features')} numbers ({', '.join(pre.get('feature_names', []))})",
        "tensors": "raw tensors, one object by input name, axis 0 the batch: "
        + "; ".join(f"{s['name']} {s['dtype']} {s['shape']} ({TYPED_ARRAYS[s['dtype']]})" for s in manifest["inputs"])
        + ". Each a `{data, shape}` with that typed array (bool: 0/1 bytes), or nested arrays",
    }.get(pre["kind"], pre["kind"])
    return f"""# {name} for JavaScript

Made by `torchzoo embed {name}`: `model.onnx` and `manifest.json` as exported (the client checks the
graph's sha256 against the manifest), `{CLIENT_FILE}` (the preprocessing and postprocessing of the Python
runtime, with the same refusals), and `index.html`. Inputs: {what}.

## Node

```bash
npm install --ignore-scripts   # onnxruntime-node's postinstall only fetches CUDA binaries (CPU ones ship)
```

```js
import * as ort from "onnxruntime-node";
import {{ loadArtifact }} from "./{CLIENT_FILE}";

const model = await loadArtifact(new URL(".", import.meta.url).pathname, {{ ort }});
console.log(JSON.stringify(await model.predict([{example}], {{ topK: 3 }})));
```

## Web page

Serve this directory (after the `npm install` above, which brings onnxruntime-web) and open `index.html`:
`python -m http.server` then http://127.0.0.1:8000/. In your own page:

```html
<script type="module">
  import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
  import {{ loadArtifact }} from "./{CLIENT_FILE}";
  const model = await loadArtifact(new URL(".", location.href).href, {{ ort }});
  console.log(await model.predict([{example}]));
</script>
```

The sha256 check uses `crypto.subtle`, which browsers give only to secure contexts (https, localhost).
Bad input raises a `UserInputError` whose message is the Python runtime's.
"""


def package_json(manifest: dict[str, Any]) -> str:
    body = {
        "name": f"torchzoo-{manifest['model']}",
        "private": True,
        "type": "module",
        "dependencies": {"onnxruntime-node": ORT_VERSION, "onnxruntime-web": ORT_VERSION},
    }
    return json.dumps(body, indent=2) + "\n"


def write_bundle(directory: Path, out: Path) -> list[Path]:
    """Write the bundle of the artifact at ``directory`` into ``out``; returns the files written."""
    manifest = verified_manifest(directory)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out} is a file, not a directory")
    if out.resolve() == directory.resolve():
        raise UserInputError("--out must not be the artifact directory itself")
    out.mkdir(parents=True, exist_ok=True)
    graph = artifact.read_verified(directory, manifest, artifact.ONNX)
    contents: dict[str, bytes] = {
        artifact.ONNX: graph,
        artifact.MANIFEST: (directory / artifact.MANIFEST).read_bytes(),
        CLIENT_FILE: js_client.resource(js_client.CLIENT).read_bytes(),
        "package.json": package_json(manifest).encode(),
        "README.md": readme(manifest).encode(),
        "index.html": js_client.resource(js_client.PAGE).read_bytes(),
    }
    written = []
    for name in BUNDLE_FILES:
        artifact.write_bytes_atomic(out / name, contents[name])
        written.append(out / name)
    if artifact.manifest_digest(json.loads(contents[artifact.MANIFEST])) != manifest[artifact.SELF_HASH]:
        shutil.rmtree(out, ignore_errors=True)
        raise ArtifactError(f"{directory / artifact.MANIFEST} changed while it was read; try again")
    return written
