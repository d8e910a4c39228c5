"""Refuse a TensorFlow SavedModel whose graph could touch files or run anything but the course's BERT.

A SavedModel is a program: its functions are TensorFlow graphs, and a graph may hold ops that
read or write files (``ReadFile``, ``WriteFile``, ``SaveV2``, ``PrintV2`` to a file, ...),
call Python (``PyFunc``) or list folders. ``tf.saved_model.load`` runs some of those functions
at load time (table initialisers) and the ``serving_default`` signature on every prediction.
A model folder handed to a user must not be able to do that.

Why an allowlist and not rebuilding the model from the course's code: the TF Hub BERT's
architecture and its preprocessing (WordPiece, normalisation) live in TF Hub's own SavedModels,
not in course code; rebuilding at load would need the TF Hub download (network, or a cache the
serving machine does not have) and would make an export folder depend on files outside it. So
the folder stays a self-contained SavedModel, and :func:`check_saved_model` reads its graph as
data (protobuf, nothing executed) before TensorFlow loads it:

* every op of every function in the library (nested calls, loop bodies and branches included)
  and of the main graph must be one of :data:`ALLOWED_OPS`: the ops the course's BERT models
  (frozen and fine-tuned, notebook 05a) are made of. TensorFlow's own
  ``saved_model_cli scan`` denylist (``ReadFile``, ``WriteFile``, ``PrintV2``) is a subset of
  what this refuses; :data:`DENIED_OPS` only words the message;
* the checkpoint ops (:data:`CHECKPOINT_OPS`: ``SaveV2``, ``RestoreV2``, ...) are allowed only
  in functions that ``tf.saved_model.load`` never calls (the ``_traced_save`` /
  ``_traced_restore`` functions that TensorFlow 1's loader uses through the main graph; TF 2
  restores variables with its own code), never in a function a signature or an object reaches;
* the one file-reading op the model needs, ``InitializeTableFromTextFileV2`` (the WordPiece
  vocabulary), must get its file name from one of the SavedModel's own assets, passed down
  unchanged through function arguments; asset names must be plain names inside ``assets/``;
* no symbolic links, no Python-registered savers, one meta graph with an object graph (without
  one, TensorFlow loads the model the TF 1 way, by running the main graph and its saver).

A model saved by another TensorFlow version may use an op missing here: the message says so
and names the op; re-save it with the pinned TensorFlow (requirements.txt).
"""
from __future__ import annotations

from pathlib import Path

from utils.modelfiles.predictor import ModelFormatError

MAX_PB_BYTES = 512 * 2**20

# The ops of the course's TF Hub BERT SavedModels (notebook 05a: frozen + head, and fine-tuned;
# BERT preprocessing model v3, small BERT encoders v2), as written by TensorFlow 2.21 and tf-keras.
ALLOWED_OPS = frozenset({
    # graph plumbing, variables, control flow
    "Const", "Identity", "IdentityN", "NoOp", "Placeholder", "PartitionedCall", "StatefulPartitionedCall",
    "StatelessWhile", "StatelessIf", "While", "If", "VarHandleOp", "ReadVariableOp", "AssignVariableOp",
    "VarIsInitializedOp", "DisableCopyOnRead", "ResourceGather", "StopGradient", "EnsureShape",
    # tensors and arithmetic
    "AddV2", "Sub", "Mul", "RealDiv", "FloorDiv", "Pow", "Rsqrt", "SquaredDifference", "Maximum", "Minimum",
    "MatMul", "BatchMatMulV2", "Einsum", "BiasAdd", "Relu", "Tanh", "Sigmoid", "Softmax", "Erf",
    "Sum", "Mean", "Max", "All", "Equal", "Less", "LessEqual", "Greater", "GreaterEqual", "LogicalAnd",
    "Select", "SelectV2", "Cast", "Shape", "Reshape", "ExpandDims", "Squeeze", "Transpose", "Tile", "Fill",
    "BroadcastTo", "ConcatV2", "Pack", "Unpack", "StridedSlice", "GatherV2", "OneHot", "Range", "RandomUniform",
    "TensorListFromTensor", "TensorListGetItem", "TensorListReserve", "TensorListSetItem", "TensorListStack",
    # ragged tensors and strings (the preprocessing model; RE2 regular expressions run in linear time)
    "RaggedGather", "RaggedTensorFromVariant", "RaggedTensorToTensor", "RaggedTensorToVariant",
    "StringJoin", "StaticRegexFullMatch", "StaticRegexReplace",
    "CaseFoldUTF8", "NormalizeUTF8", "RegexSplitWithOffsets", "WordpieceTokenizeWithOffsets",
    # the WordPiece vocabulary table (its file name is checked: an asset of the folder)
    "HashTableV2", "LookupTableFindV2", "InitializeTableFromTextFileV2",
}) | frozenset({
    # pure computation that a BERT exported by another Model Garden / TF version may use instead
    # (no files, no Python, no network: the same guarantee as above)
    "AddN", "Neg", "Abs", "Square", "Sqrt", "Exp", "Log", "Log1p", "Reciprocal", "Softplus", "Relu6", "Elu",
    "Selu", "LeakyRelu", "Gelu", "LogSoftmax", "Prod", "Min", "Any", "ArgMax", "ArgMin", "Cumsum",
    "NotEqual", "LogicalOr", "LogicalNot", "ZerosLike", "OnesLike", "Rank", "Size", "Slice", "Split", "SplitV",
    "Where", "GatherNd", "ClipByValue", "Round", "Floor", "FloorMod", "Sign", "Einsum", "BatchMatMulV3",
    "StatelessRandomUniformV2", "StatelessRandomGetKeyCounter", "StatelessRandomGetKeyCounterAlg",
    "StatelessRandomNormalV2", "RandomStandardNormal", "TruncatedNormal", "Assert",
})
# variables checkpoint: only in functions tf.saved_model.load never runs (see the module's docstring)
CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename"})
# named in the message: TensorFlow's `saved_model_cli scan` denylist and their relatives
DENIED_OPS = {
    "ReadFile": "reads a file", "WriteFile": "writes a file", "PrintV2": "can print to a file",
    "MatchingFiles": "lists files", "Save": "writes a file", "SaveSlices": "writes a file",
    "SaveV2": "writes a checkpoint file", "RestoreV2": "reads a checkpoint file",
    "MergeV2Checkpoints": "writes and deletes files", "PyFunc": "runs Python code",
    "PyFuncStateless": "runs Python code", "EagerPyFunc": "runs Python code",
    "ImmutableConst": "maps a file into memory", "FixedLengthRecordDataset": "reads files",
    "TFRecordDataset": "reads files", "TextLineDataset": "reads files", "DebugIdentityV2": "writes debug files",
    "SummaryWriter": "writes files", "CreateSummaryFileWriter": "writes files",
}
FILE_NAME_INPUT = {"InitializeTableFromTextFileV2": 1}   # op -> index of its file-name input


def _fail(path: Path, why: str) -> ModelFormatError:
    return ModelFormatError(f"Refusing to load {path}: {why}. A model folder must not be able to run "
                            f"anything but the course's model; re-save it with notebook 05a, or load only "
                            f"model folders you trust.")


def _callees(node, library: dict) -> list[str]:
    """Names of the library functions a node calls (f=, body=, then_branch=, branches=, or the op itself)."""
    out = [node.op] if node.op in library else []
    for value in node.attr.values():
        if value.func.name:
            out.append(value.func.name)
        out += [f.name for f in value.list.func]
    return out


def _data_inputs(node) -> list[str]:
    return [i for i in node.input if not i.startswith("^")]


def _arg_of(fdef, ref: str, nodes: dict) -> int | None:
    """The index of the function argument that ``ref`` is (through Identity ops), else None."""
    args = [a.name for a in fdef.signature.input_arg]
    for _ in range(100):
        name = ref.split(":")[0]
        if name in args and ":" not in ref:
            return args.index(name)
        node = nodes.get(name)
        if node is None or node.op != "Identity" or not _data_inputs(node):
            return None
        ref = _data_inputs(node)[0]
    return None


def _symlinks(folder: Path) -> list[Path]:
    return [p for p in [folder, *folder.rglob("*")] if p.is_symlink()]


def check_saved_model(path) -> None:
    """Raise :class:`ModelFormatError` unless the SavedModel at ``path`` holds only the course BERT's ops."""
    path = Path(path)
    pb = path / "saved_model.pb"
    links = _symlinks(path)
    if links:
        raise _fail(path, f"it holds a symbolic link ({links[0].relative_to(path.parent)}), which can point "
                          f"outside the folder")
    size = pb.stat().st_size
    if size > MAX_PB_BYTES:
        raise _fail(path, f"saved_model.pb has {size:,} bytes, more than the {MAX_PB_BYTES:,} a course model needs")
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(pb.read_bytes())
    except (DecodeError, RecursionError, ValueError) as err:
        raise ModelFormatError(f"{pb} is not a readable SavedModel ({type(err).__name__}: "
                               f"{str(err)[:200]}); re-run notebook 05a.") from None
    if len(saved.meta_graphs) != 1:
        raise _fail(path, f"it holds {len(saved.meta_graphs)} meta graphs, the course saves one")
    meta = saved.meta_graphs[0]
    if not meta.HasField("object_graph_def") or not meta.object_graph_def.nodes:
        # TensorFlow loads such a (TF 1) SavedModel by running its main graph, saver included
        raise _fail(path, "it is a TensorFlow 1 SavedModel (no object graph), which loads by running its main graph")
    library = {f.signature.name: f for f in meta.graph_def.library.function}
    objects = meta.object_graph_def

    # functions tf.saved_model.load can call: those the object graph names (signatures, restored
    # functions, resource initialisers, saveable objects), and everything they call
    roots = set(objects.concrete_functions)
    for node in objects.nodes:
        kind = node.WhichOneof("kind")
        if kind == "function":
            roots.update(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            roots.add(node.bare_concrete_function.concrete_function_name)
        if node.registered_saver:
            raise _fail(path, f"an object uses the Python-registered saver {node.registered_saver!r}")
    missing = sorted(roots - set(library))
    if missing:
        raise _fail(path, f"the object graph names functions missing from the library ({missing[:3]})")
    reached, todo, callers = set(), list(roots), {}
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        for node in library[name].node_def:
            for callee in _callees(node, library):
                if callee not in library:
                    raise _fail(path, f"function {name} calls {callee!r}, which the library does not define")
                callers.setdefault(callee, []).append((name, node))
                todo.append(callee)

    def check_op(op: str, where: str, loaded: bool) -> None:
        if op in library or op in ALLOWED_OPS or (op in CHECKPOINT_OPS and not loaded):
            return
        why = DENIED_OPS.get(op, "is not one of the ops the course's BERT models are made of")
        raise _fail(path, f"{where} holds the TensorFlow op {op!r}, which {why}")

    for node in meta.graph_def.node:           # the main graph: only TensorFlow 1's loader runs it
        check_op(node.op, "the main graph", loaded=False)
    for name, fdef in library.items():
        for node in fdef.node_def:
            check_op(node.op, f"function {name}" + ("" if name in reached else " (not loaded)"), name in reached)

    # a file-reading op's file name must be an asset of the folder, passed down unchanged
    must_be_asset: dict[str, set[int]] = {}
    for name in reached:
        fdef = library[name]
        nodes = {n.name: n for n in fdef.node_def}
        for node in fdef.node_def:
            if node.op in FILE_NAME_INPUT:
                arg = _arg_of(fdef, _data_inputs(node)[FILE_NAME_INPUT[node.op]], nodes)
                if arg is None:
                    raise _fail(path, f"function {name}: {node.op} reads a file whose name is computed in the "
                                      f"graph, not one of the folder's assets")
                must_be_asset.setdefault(name, set()).add(arg)
    todo = [(f, a) for f, args in must_be_asset.items() for a in args]
    seen = set()
    while todo:
        fname, arg = todo.pop()
        if (fname, arg) in seen:
            continue
        seen.add((fname, arg))
        for caller, node in callers.get(fname, []):
            if caller not in reached:
                continue
            inputs = _data_inputs(node)
            if node.op in library or node.op.endswith("PartitionedCall"):
                ref = inputs[arg] if arg < len(inputs) else None
                fdef = library[caller]
                up = _arg_of(fdef, ref, {n.name: n for n in fdef.node_def}) if ref else None
                if up is None:
                    raise _fail(path, f"function {caller} passes {fname} a file name that is not one of the "
                                      f"folder's assets")
                todo.append((caller, up))
            else:
                raise _fail(path, f"function {fname}, which reads a file, is called by a {node.op} op")
        if fname in roots:
            _check_bound_asset(path, meta, objects, library, fname, arg)
    _check_asset_names(path, meta)


def _check_bound_asset(path: Path, meta, objects, library, fname: str, arg: int) -> None:
    n_args = len(library[fname].signature.input_arg)
    saved = objects.concrete_functions.get(fname)
    bound = list(saved.bound_inputs) if saved is not None else []
    index = arg - (n_args - len(bound))
    if index < 0 or index >= len(bound) or objects.nodes[bound[index]].WhichOneof("kind") != "asset":
        raise _fail(path, f"function {fname} reads a file whose name is not one of the folder's assets")


def _check_asset_names(path: Path, meta) -> None:
    assets = path / "assets"
    for asset in meta.asset_file_def:
        name = asset.filename
        parts = Path(name).parts
        if (not name or Path(name).is_absolute() or ".." in parts or "\\" in name or len(parts) != 1
                or "\x00" in name):
            raise _fail(path, f"it names the asset file {name!r}, outside its assets/ folder")
        target = assets / name
        if not target.is_file() or target.is_symlink():
            raise _fail(path, f"its asset file assets/{name} is missing or not a plain file")
