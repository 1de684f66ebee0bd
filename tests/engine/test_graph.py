"""The model graph: structure (residual adds, tied weights), grouping, identity, layout."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from engine import Session
from engine.graph import GraphError, build_graph
from engine.graph.groups import GroupTree
from engine.graph.layout import GraphLayout
from engine.graph.serialize import expanded_to_depth, visible_json
from engine.graph.twin import meta_twin
from tests.models import SmallCNN, TiedLM, seeded

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def resnet18_graph():
    return build_graph(seeded(torchvision.models.resnet18))


def tiny_gpt2():
    transformers.logging.set_verbosity_error()
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=101,
                                     n_positions=32, bos_token_id=0, eos_token_id=0)
    return seeded(lambda: transformers.GPT2LMHeadModel(config))


def test_resnet18_residual_adds_join_two_branches_inside_each_block(resnet18_graph):
    graph = resnet18_graph
    assert graph.method == "export"
    blocks = [f"layer{stage}.{index}" for stage in range(1, 5) for index in range(2)]
    for block in blocks:
        adds = [node for node in graph if node.module == block and node.op.startswith("add")]
        assert len(adds) == 1, block
        add = adds[0]
        assert add.id == f"{block}#0"
        assert len(add.inputs) == 2
        # One input is the main branch (the block's bn2), the other the shortcut.
        modules = {graph.nodes[source].module for source in add.inputs}
        assert f"{block}.bn2" in modules
        shortcut = (modules - {f"{block}.bn2"}).pop()
        assert shortcut != block
        assert not shortcut.startswith(f"{block}.bn")
        assert add.shape == graph.nodes[add.inputs[0]].shape
    assert graph.outputs == ["fc#0"]
    assert graph.nodes["fc#0"].shape == (1, 1000)
    assert graph.inputs == ["input:x"]


def test_gpt2_tied_embedding_is_one_tensor_with_two_uses():
    graph = build_graph(tiny_gpt2())
    assert graph.method == "export"
    tensor = graph.nodes["transformer.wte.weight"]
    assert tensor.kind == "parameter"
    assert tensor.names == ("transformer.wte.weight", "lm_head.weight")
    assert "lm_head.weight" not in graph.nodes
    readers = graph.users()["transformer.wte.weight"]
    assert [graph.nodes[reader].module for reader in readers] == ["transformer.wte", "lm_head"]
    assert [graph.nodes[reader].op for reader in readers] == ["embedding", "linear"]
    assert graph.inputs == ["input:input_ids"]
    assert graph.nodes["input:input_ids"].dtype == "int64"


def test_an_untied_copy_reads_as_two_tensors():
    model = seeded(TiedLM)
    model.lm_head.weight = nn.Parameter(model.embed.weight.detach().clone())
    graph = build_graph(model)
    assert graph.users()["embed.weight"] == ["embed#0"]
    assert graph.users()["lm_head.weight"] == ["lm_head#0"]


@pytest.mark.parametrize("method", ["export", "fx", "hooks"])
def test_every_method_finds_the_same_groups_and_adds(method, resnet18_graph):
    graph = build_graph(seeded(torchvision.models.resnet18), method=method)
    assert graph.method == method
    adds = sorted(node.id for node in graph if node.op.startswith("add"))
    expected = sorted(node.id for node in resnet18_graph if node.op.startswith("add"))
    assert adds == expected
    assert set(graph.module_types) == set(resnet18_graph.module_types)
    tensors = {node.id for node in graph if node.is_tensor}
    expected_tensors = {node.id for node in resnet18_graph if node.is_tensor}
    if method == "fx":
        # An fx leaf layer reads all its tensors, BatchNorm's step counter too.
        assert all(graph.nodes[extra].kind == "buffer" for extra in tensors - expected_tensors)
        tensors &= expected_tensors
    assert tensors == expected_tensors


def test_graph_of_a_meta_model_reads_no_weight_and_leaves_the_live_model_alone():
    transformers.logging.set_verbosity_error()
    config = transformers.LlamaConfig(num_hidden_layers=3, hidden_size=32, intermediate_size=64,
                                      num_attention_heads=2, num_key_value_heads=2,
                                      vocab_size=97)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    model.train()
    graph = build_graph(model)
    assert graph.method == "export"
    assert model.training
    assert all(module.training for module in model.modules())
    assert graph.nodes["lm_head#0"].shape == (1, 16, 97)
    tree = GroupTree(graph)
    # A language model opens on its blocks: the wrapper and the ModuleList are open.
    expanded = tree.initial_expanded()
    assert {"", "model", "model.layers"} <= expanded
    visible = tree.visible_items(expanded)
    assert {"model.layers.0", "model.layers.1", "model.layers.2", "lm_head"} <= set(visible)
    assert tree.groups["model.layers.0"].repeats == 3
    assert tree.groups["model.layers.2"].identical_to == "model.layers.0"


def test_live_weights_are_not_copied_into_the_twin():
    model = seeded(SmallCNN)
    twin = meta_twin(model)
    assert twin is not None
    assert all(t.device.type == "meta" for t in [*twin.parameters(), *twin.buffers()])
    assert [name for name, _ in twin.named_parameters()] == \
        [name for name, _ in model.named_parameters()]
    tied = meta_twin(seeded(TiedLM))
    assert tied.lm_head.weight is tied.embed.weight


class DataDependent(nn.Module):
    """Its forward branches on a value: export and fx fail, meta cannot answer."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        if y.sum() > 0:
            return self.b(y)
        return self.b(-y)


class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this model never runs\nsecond line")


def test_a_data_dependent_model_falls_back_to_the_live_forward_pass():
    graph = build_graph(seeded(DataDependent))
    assert graph.method == "hooks"
    assert any(note.startswith("export:") for note in graph.notes)
    assert any(note.startswith("fx:") for note in graph.notes)
    assert [node.module for node in graph if node.kind == "op"][:1] == ["a"]
    assert any(node.module == "b" for node in graph)


def test_an_untraceable_model_is_one_line_naming_each_reason():
    with pytest.raises(GraphError) as caught:
        build_graph(seeded(Broken), input_shape=[3])
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith("graph: Broken cannot be traced: ")
    assert "export:" in text
    assert "fx:" in text
    assert "hooks:" in text
    assert "this model never runs" in text


def test_no_example_inputs_is_one_line():
    with pytest.raises(GraphError, match="no example inputs") as caught:
        build_graph(nn.Sequential(nn.ReLU()))
    assert "\n" not in str(caught.value)


def test_node_ids_survive_a_rebuild_after_an_edit_elsewhere(resnet18_graph):
    session = Session(seeded(torchvision.models.resnet18))
    session.apply({"op": "replace", "target": "fc", "module": {"type": "Linear",
                                                               "out_features": 10}})
    edited = build_graph(session.model)
    before = {node_id for node_id in resnet18_graph.nodes if not node_id.startswith("fc")}
    after = {node_id for node_id in edited.nodes if not node_id.startswith("fc")}
    assert before == after
    assert edited.nodes["fc#0"].shape == (1, 10)
    old = GroupTree(resnet18_graph)
    new = GroupTree(edited)
    changed = {key for key in old.groups if old.groups[key].signature !=
               new.groups[key].signature}
    assert changed == {"", "fc"}  # the root holds fc; nothing else differs
    assert build_graph(session.model).to_json() == edited.to_json()  # deterministic


def test_grouping_collapse_and_identical_siblings(resnet18_graph):
    tree = GroupTree(resnet18_graph)
    assert tree.initial_expanded() == {""}
    top = tree.visible_items({""})
    assert top == ["input:x", "#0", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2",
                   "layer3", "layer4", "avgpool", "fc"]
    opened = tree.visible_items({"", "layer1"})
    assert "layer1" not in opened
    assert {"layer1.0", "layer1.1"} <= set(opened)
    assert tree.groups["layer1.1"].identical_to == "layer1.0"
    assert tree.groups["layer1.0"].repeats == 2
    assert tree.groups["layer2.0"].identical_to is None  # it has the downsample
    assert tree.groups["layer2.0"].repeats == 1
    # A ReLU module that runs twice in a block is two groups, one per call.
    assert "layer1.0.relu@1" in tree.groups["layer1.0"].children
    assert tree.keys_of_module("layer1.0.relu") == ["layer1.0.relu", "layer1.0.relu@1"]
    add = "layer1.0#0"
    assert tree.representative(add, {""}) == "layer1"
    assert tree.representative(add, {"", "layer1"}) == "layer1.0"
    assert tree.representative(add, {"", "layer1", "layer1.0"}) == add
    assert tree.reveal(add) == {"", "layer1", "layer1.0"}
    assert tree.reveal("layer1.0.conv1.weight") == {"", "layer1", "layer1.0", "layer1.0.conv1"}


def test_layout_is_cached_per_group_and_frames_hold_their_boxes(resnet18_graph):
    tree = GroupTree(resnet18_graph)
    layout = GraphLayout(tree)
    scene = layout.arrange({""})
    assert set(scene.boxes) == set(tree.visible_items({""}))
    assert layout.computed == 1
    opened = layout.arrange({"", "layer2", "layer2.0"})
    assert layout.computed == 4  # layer2.0, layer2, and the root again; nothing else
    frame = opened.frames["layer2.0"]
    for item in tree.groups["layer2.0"].items():
        box = opened.boxes.get(item) or opened.frames.get(item)
        assert frame.x <= box.x
        assert box.x + box.width <= frame.x + frame.width
        assert frame.y <= box.y
        assert box.y + box.height <= frame.y + frame.height
    layout.arrange({""})
    assert layout.computed == 4  # from the cache
    # No two boxes of one level overlap.
    boxes = [opened.boxes.get(i) or opened.frames[i] for i in tree.groups["layer2.0"].items()]
    for first in boxes:
        for second in boxes:
            if first is not second:
                assert (first.x + first.width <= second.x or second.x + second.width <= first.x
                        or first.y + first.height <= second.y
                        or second.y + second.height <= first.y)
    # Every edge between shown boxes is drawn, from its source to its target.
    drawn = {(route.source, route.target) for route in opened.routes}
    expanded = {"", "layer2", "layer2.0"}
    for edge in visible_json(tree, expanded)["edges"]:
        assert (edge["from"], edge["to"]) in drawn
    for route in opened.routes:
        assert len(route.points) >= 2


def test_a_rebuilt_graph_reuses_the_layouts_of_unchanged_groups(resnet18_graph):
    tree = GroupTree(resnet18_graph)
    layout = GraphLayout(tree)
    everything = expanded_to_depth(tree, None)
    layout.arrange(everything)
    session = Session(seeded(torchvision.models.resnet18))
    session.apply({"op": "replace", "target": "fc", "module": {"type": "Linear",
                                                               "out_features": 10}})
    rebuilt = GraphLayout(GroupTree(build_graph(session.model)), cache=layout.cache)
    rebuilt.arrange(everything)
    assert rebuilt.computed == 2  # fc and the root


def test_visible_json_with_depth_has_closed_groups_as_nodes(resnet18_graph):
    tree = GroupTree(resnet18_graph)
    shown = visible_json(tree, expanded_to_depth(tree, 1))
    ids = [node["id"] for node in shown["nodes"]]
    assert ids == ["input:x", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                   "layer4", "avgpool", "#0", "fc"]
    layer1 = shown["nodes"][ids.index("layer1")]
    assert layer1 == {"id": "layer1", "op": "Sequential", "module": "layer1",
                      "shape": [1, 64, 16, 16], "dtype": "float32"}
    assert {"from": "maxpool", "to": "layer1"} in shown["edges"]
    assert shown["outputs"] == ["fc"]
    assert visible_json(tree, expanded_to_depth(tree, None)) == resnet18_graph.to_json()


@pytest.mark.parametrize("factory", ["bert", "llama"])
def test_hugging_face_tiny_configs_graph(factory):
    transformers.logging.set_verbosity_error()
    if factory == "bert":
        config = transformers.BertConfig(num_hidden_layers=2, hidden_size=32,
                                         num_attention_heads=2, intermediate_size=64,
                                         vocab_size=99, max_position_embeddings=32)
        model = seeded(lambda: transformers.BertModel(config))
        block = "encoder.layer.0"
    else:
        config = transformers.LlamaConfig(num_hidden_layers=2, hidden_size=32,
                                          intermediate_size=64, num_attention_heads=2,
                                          num_key_value_heads=2, vocab_size=99)
        model = seeded(lambda: transformers.LlamaForCausalLM(config))
        block = "model.layers.0"
    graph = build_graph(model)
    assert graph.method == "export"
    assert graph.inputs == ["input:input_ids"]
    tree = GroupTree(graph)
    assert tree.groups[block].repeats == 2
    assert all(source in graph.nodes for node in graph for source in node.inputs)


def test_a_timm_model_graphs():
    pytest.importorskip("timm")
    from engine.arch import build_model

    graph = build_graph(build_model("timm:resnet18", meta=True))
    assert graph.method == "export"
    tree = GroupTree(graph)
    assert tree.groups["layer1.1"].identical_to == "layer1.0"


def test_a_model_whose_constructor_needs_values_is_built_on_the_cpu_for_meta():
    from engine.arch import build_model

    model = build_model("torchvision:regnet_x_400mf", meta=True)
    assert next(model.parameters()).device.type == "cpu"
    reference = build_model("torchvision:regnet_x_400mf")
    assert torch.equal(model.stem[0].weight, reference.stem[0].weight)
