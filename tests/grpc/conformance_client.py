"""A Python client of inference.GRPCInferenceService, with grpcio and the stubs grpc_tools compiled
from the vendored .proto (PYTHONPATH names where): nothing of modelgate's own. It reads cases
(JSON: model, inputs and output names, ONNX element types) on stdin, sends each as tritonclient
does (raw_input_contents) and as KServe's client does (typed contents; FP16 has none), and prints
one JSON line per call with the outputs it got, values as JSON carries them exactly: floats as
numbers or "NaN"/"Infinity"/"-Infinity", int64/uint64 as decimal strings."""

import json
import math
import struct
import sys

import grpc
import grpc_predict_v2_pb2 as pb
import grpc_predict_v2_pb2_grpc as rpc

DATATYPE = {
    "bool": "BOOL", "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP64", "string": "BYTES",
}
STRUCT = {
    "BOOL": "?", "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q", "UINT8": "B",
    "UINT16": "H", "UINT32": "I", "UINT64": "Q", "FP16": "e", "FP32": "f", "FP64": "d",
}
CONTENTS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}


def value(datatype, v):
    """A manifest value as Python holds it for this datatype."""
    if datatype == "BYTES":
        return v.encode("utf-8")
    if datatype == "BOOL":
        return bool(v)
    if datatype.startswith("FP"):
        return float(v)  # "NaN", "Infinity" and "-Infinity" too
    return int(v)


def raw(datatype, values):
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(b)) + b for b in values)
    return struct.pack("<%d%s" % (len(values), STRUCT[datatype]), *values)


def unraw(datatype, data, count):
    if datatype == "BYTES":
        out, pos = [], 0
        for _ in range(count):
            (n,) = struct.unpack_from("<I", data, pos)
            out.append(data[pos + 4 : pos + 4 + n])
            pos += 4 + n
        return out
    return list(struct.unpack("<%d%s" % (count, STRUCT[datatype]), data))


def wire(datatype, v):
    """A value as JSON carries it exactly."""
    if datatype == "BYTES":
        return v.decode("utf-8")
    if datatype == "BOOL":
        return bool(v)
    if datatype.startswith("FP"):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    return str(v) if datatype in ("INT64", "UINT64") else v


def infer(stub, case, mode):
    request = pb.ModelInferRequest(model_name=case["model"], id="py-" + mode)
    for t in case["inputs"]:
        datatype = DATATYPE[t["type"]]
        values = [value(datatype, v) for v in t["data"]]
        tensor = request.inputs.add(name=t["name"], datatype=datatype, shape=t["dims"])
        if mode == "raw":
            request.raw_input_contents.append(raw(datatype, values))
        else:
            getattr(tensor.contents, CONTENTS[datatype]).extend(values)
    for name in case["outputs"]:
        request.outputs.add(name=name)
    response = stub.ModelInfer(request, timeout=60)
    outputs = {}
    for i, o in enumerate(response.outputs):
        count = math.prod(o.shape)
        if len(response.raw_output_contents) > 0:
            values = unraw(o.datatype, response.raw_output_contents[i], count)
        else:
            values = list(getattr(o.contents, CONTENTS[o.datatype]))
        outputs[o.name] = {
            "datatype": o.datatype,
            "shape": list(o.shape),
            "raw": len(response.raw_output_contents) > 0,
            "data": [wire(o.datatype, v) for v in values],
        }
    return {"model_name": response.model_name, "model_version": response.model_version,
            "id": response.id, "outputs": outputs}


def main():
    cases = json.load(sys.stdin)
    limit = 64 * 1024 * 1024
    with grpc.insecure_channel(sys.argv[1], options=[
        ("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit),
    ]) as channel:
        stub = rpc.GRPCInferenceServiceStub(channel)
        for case in cases:
            modes = ["raw"]
            if all(t["type"] != "float16" for t in case["inputs"]):
                modes.append("typed")
            for mode in modes:
                line = {"case": case["name"], "mode": mode}
                try:
                    line["response"] = infer(stub, case, mode)
                except grpc.RpcError as e:
                    line["error"] = "%s: %s" % (e.code().name, e.details())
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
