"""Each merge method against a direct re-implementation of mergekit's formula.

The references below are written the way the papers and mergekit state them (stack the
task vectors, mask, sum over the stack), independently of the engine's one-at-a-time
accumulation; they run on 2-3 small variants built here, in float32 and bfloat16.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from engine.merge.methods import MergeInputs, draw_generator, merge_tensors, slerp

DEFAULTS = {"linear": {"normalize": True}, "task_arithmetic": {"normalize": False, "lambda": 1.0},
            "ties": {"normalize": True, "lambda": 1.0},
            "dare_linear": {"normalize": False, "lambda": 1.0, "rescale": True},
            "dare_ties": {"normalize": False, "lambda": 1.0, "rescale": True}}


def variants(shape: tuple[int, ...], count: int, dtype: torch.dtype, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=generator)
    models = [(base + 0.1 * (index + 1) * torch.randn(shape, generator=generator)).to(dtype)
              for index in range(count)]
    return base.to(dtype), models


# ---------------------------------------------------------------------- references
def ref_linear(models, weights, normalize=True):
    work = torch.float64 if models[0].dtype == torch.float64 else torch.float32
    total = sum(w * m.to(work) for w, m in zip(weights, models, strict=True))
    if normalize:
        total = total / sum(weights)
    return total.to(models[0].dtype)


def ref_topk_mask(delta, density):
    if density >= 1:
        return torch.ones_like(delta)
    k = max(1, int(density * delta.numel()))
    flat = delta.abs().reshape(-1).float()
    mask = torch.zeros(delta.numel(), dtype=delta.dtype)
    # Equal magnitudes (frequent in bfloat16) are broken as mergekit breaks them: by the
    # order of a descending argsort.
    mask[torch.argsort(flat, descending=True)[:k]] = 1
    return mask.reshape(delta.shape)


def ref_gta(base, models, weights, densities, *, sparsify, consensus, normalize, scale):
    deltas = torch.stack([m - base for m in models])
    if sparsify == "magnitude":
        deltas = deltas * torch.stack([ref_topk_mask(d, p)
                                       for d, p in zip(deltas, densities, strict=True)])
    w = torch.tensor(weights, dtype=deltas.dtype).reshape(-1, *([1] * base.dim()))
    deltas = deltas * w
    if consensus:
        elected = torch.where(deltas.sum(0) >= 0, 1.0, -1.0).to(deltas.dtype)
        mask = deltas.sign() == elected
        mixed = (deltas * mask).sum(0)
        divisor = (w * mask).sum(0)
        divisor[divisor == 0] = 1
    else:
        mixed = deltas.sum(0)
        divisor = w.sum(0)
        divisor[divisor.abs() < 1e-8] = 1
    if normalize:
        mixed = mixed / divisor
    return (base + scale * mixed).to(base.dtype)


def ref_slerp(t, v0, v1, threshold=0.9995):
    a, b = v0.double().reshape(-1), v1.double().reshape(-1)
    cos = float((a / a.norm()) @ (b / b.norm()))
    if abs(cos) > threshold:
        return ((1 - t) * a + t * b).reshape(v0.shape)
    theta = math.acos(max(-1.0, min(1.0, cos)))
    return ((math.sin((1 - t) * theta) * a + math.sin(t * theta) * b)
            / math.sin(theta)).reshape(v0.shape)


def run(method, models, base=None, weights=None, densities=None, seed=0, **parameters):
    weights = weights or [1.0] * len(models)
    densities = densities or [1.0] * len(models)
    return merge_tensors(method, MergeInputs(
        models=models, weights=weights, densities=densities, base=base,
        parameters={**DEFAULTS.get(method, {}), **parameters},
        generator_for=lambda index: draw_generator(seed, "w", index)))


def close(got, expected, tol=1e-6):
    got, expected = got.double(), expected.double()
    scale = float(expected.abs().max()) or 1.0
    return float((got - expected).abs().max()) / scale <= tol


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("normalize", [True, False])
def test_linear_is_the_weighted_average(dtype, normalize):
    _, models = variants((8, 5), 3, dtype)
    weights = [0.5, 0.3, 0.7]
    got = run("linear", models, weights=weights, normalize=normalize)
    assert got.dtype == dtype
    tol = 1e-6 if dtype == torch.float32 else 2**-8
    assert close(got, ref_linear(models, weights, normalize), tol)


@pytest.mark.parametrize(("normalize", "scale"), [(False, 1.0), (True, 1.0), (False, 0.6)])
def test_task_arithmetic_adds_weighted_task_vectors(normalize, scale):
    base, models = variants((6, 7), 3, torch.float32, seed=1)
    weights = [1.0, 0.5, -0.25]
    got = run("task_arithmetic", models, base, weights, normalize=normalize, **{"lambda": scale})
    expected = ref_gta(base, models, weights, [1.0] * 3, sparsify=None, consensus=False,
                       normalize=normalize, scale=scale)
    assert close(got, expected)
    # The plain formula, with nothing else in the way: base + lambda * sum w_i (m_i - base)
    if not normalize:
        direct = base + scale * sum(w * (m - base) for w, m in zip(weights, models, strict=True))
        assert close(got, direct)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("normalize", [True, False])
def test_ties_trims_elects_and_takes_the_disjoint_mean(dtype, normalize):
    base, models = variants((9, 11), 3, dtype, seed=2)
    weights, densities = [0.5, 0.3, 0.2], [0.5, 0.7, 0.3]
    got = run("ties", models, base, weights, densities, normalize=normalize)
    expected = ref_gta(base, models, weights, densities, sparsify="magnitude", consensus=True,
                       normalize=normalize, scale=1.0)
    tol = 1e-6 if dtype == torch.float32 else 2**-7
    assert close(got, expected, tol)


def test_ties_by_hand_on_four_elements():
    base = torch.zeros(4)
    a = torch.tensor([1.0, -2.0, 0.1, 3.0])
    b = torch.tensor([-3.0, -1.0, 0.2, -1.0])
    # density 0.5 keeps the two largest magnitudes of each: a -> [0,-2,0,3], b -> [-3,-1,0,0]
    # elected signs (sum): [-3, -3, 0, 3] -> [-, -, +, +]; agreeing entries and their mean:
    got = run("ties", [a, b], base, [1.0, 1.0], [0.5, 0.5])
    assert torch.equal(got, torch.tensor([-3.0, -1.5, 0.0, 3.0]))


def test_slerp_matches_the_formula_and_its_ends():
    base, (other,) = variants((5, 6), 1, torch.float32, seed=3)
    for t in (0.0, 0.25, 0.5, 1.0):
        got = slerp(t, base, other)
        assert close(got, ref_slerp(t, base, other), 1e-5)
    assert torch.allclose(slerp(0.0, base, other), base, atol=1e-6)
    assert torch.allclose(slerp(1.0, base, other), other, atol=1e-6)
    # Parallel vectors interpolate linearly (the formula's 0/0 never happens).
    assert torch.allclose(slerp(0.5, base, 2 * base), 1.5 * base)


def test_passthrough_takes_the_model_and_a_scale():
    _, (model,) = variants((3, 3), 1, torch.float32)
    assert torch.equal(run("passthrough", [model]), model)
    got = merge_tensors("passthrough", MergeInputs([model], [1.0], [1.0], scales=[0.5]))
    assert torch.equal(got, model * 0.5)


@given(st.lists(st.floats(0.1, 2.0), min_size=1, max_size=4),
       st.sampled_from([(7,), (3, 4), (2, 3, 2)]), st.integers(0, 10**6))
def test_linear_and_task_arithmetic_for_any_weights(weights, shape, seed):
    base, models = variants(shape, len(weights), torch.float32, seed=seed)
    assert close(run("linear", models, weights=weights), ref_linear(models, weights), 1e-5)
    got = run("task_arithmetic", models, base, weights)
    expected = ref_gta(base, models, weights, [1.0] * len(weights), sparsify=None,
                       consensus=False, normalize=False, scale=1.0)
    assert close(got, expected, 1e-5)


# ---------------------------------------------------------------------- DARE
@pytest.mark.parametrize("method", ["dare_linear", "dare_ties"])
def test_dare_replays_from_its_seed(method):
    base, models = variants((40, 30), 2, torch.float32, seed=4)
    first = run(method, models, base, [0.5, 0.5], [0.4, 0.6], seed=11)
    again = run(method, models, base, [0.5, 0.5], [0.4, 0.6], seed=11)
    other = run(method, models, base, [0.5, 0.5], [0.4, 0.6], seed=12)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_dare_drops_at_the_rate_asked_and_rescales_to_the_same_l1_norm():
    base = torch.zeros(200, 100)
    delta = torch.randn(200, 100, generator=torch.Generator().manual_seed(5)) + 0.1
    density = 0.3
    got = run("dare_linear", [base + delta], base, [1.0], [density], seed=3) - base
    kept = (got != 0).float().mean().item()
    # 20,000 Bernoulli(0.3) draws: 4 standard deviations is 0.013
    assert abs(kept - density) < 4 * math.sqrt(density * (1 - density) / delta.numel())
    # Each kept element is scaled by one factor: L1 norm as before (rescale), about 1/density.
    assert math.isclose(got.abs().sum().item(), delta.abs().sum().item(), rel_tol=1e-5)
    ratio = (got[got != 0] / delta[got != 0])
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-5)
    # The factor is 1 / (the share kept), up to how the kept magnitudes average.
    assert abs(ratio[0].item() * kept - 1) < 0.03
    # Without rescale the kept elements are the task vector itself.
    plain = run("dare_linear", [base + delta], base, [1.0], [density], seed=3, rescale=False) - base
    assert torch.equal(plain != 0, got != 0)
    assert torch.equal(plain[plain != 0], delta[plain != 0])


def test_dare_ties_equals_ties_on_the_drawn_mask():
    base, models = variants((30, 20), 2, torch.float32, seed=6)
    weights, densities = [0.7, 0.4], [0.5, 0.5]
    got = run("dare_ties", models, base, weights, densities, seed=9, rescale=False)
    masks = []
    for index, model in enumerate(models):
        generator = draw_generator(9, "w", index)
        masks.append(torch.bernoulli(torch.full(model.shape, densities[index]),
                                     generator=generator))
    sparse = [base + (m - base) * mask for m, mask in zip(models, masks, strict=True)]
    expected = ref_gta(base, sparse, weights, [1.0, 1.0], sparsify=None, consensus=True,
                       normalize=False, scale=1.0)
    assert close(got, expected)


def test_draws_depend_on_seed_name_and_model_only():
    one = torch.rand(5, generator=draw_generator(1, "a.weight", 0))
    assert torch.equal(one, torch.rand(5, generator=draw_generator(1, "a.weight", 0)))
    assert not torch.equal(one, torch.rand(5, generator=draw_generator(1, "b.weight", 0)))
    assert not torch.equal(one, torch.rand(5, generator=draw_generator(1, "a.weight", 1)))
