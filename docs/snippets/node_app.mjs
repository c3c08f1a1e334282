import * as ort from "onnxruntime-node";
import { loadArtifact } from "./torchzoo-client.mjs";

const model = await loadArtifact("artifacts/names", { ort }); // a directory
console.log(JSON.stringify(await model.predict(["Rossi"], { topK: 3 }))); // [{"input":"Rossi","label":"Italian","top":[...]}]
