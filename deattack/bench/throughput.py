"""Throughput of the attack against the victim's raw jitted forward pass, and against
peer attacks on the same weights and images, in one run.

The limit is `jit(victim.apply_fn)` images/s at its best batch size; the attack's
queries/s is counted exactly (queries charged / wall time) on a second run of the
identical attack, so every program it needs is compiled before the timing starts; the
first run's wall and compile seconds are reported beside it. The machine may be shared
and noisy: the forward limit is measured before and after the attack (and the peers)
and averaged, and every ratio is taken between measurements of the same run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import resource
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from deattack.attack import attack
from deattack.attack.fitness import make_fitness
from deattack.bench.peers.result import AttackRun, speedup
from deattack.bench.peers.scipy_de import scipy_attack
from deattack.bench.timing import counting_compilations, device_name, images_per_s


def forward_throughput(victim, batch_sizes: Sequence[int], seconds: float = 2.0) -> dict[int, float]:
    """Images/s of the jitted forward at each batch size (median of 3 timed passes)."""
    apply = jax.jit(victim.apply_fn)
    rng = np.random.default_rng(0)
    result = {}
    for size in batch_sizes:
        images = jax.device_put(rng.integers(0, 256, (size, 32, 32, 3)).astype(np.float32))
        result[int(size)] = images_per_s(
            lambda: jax.block_until_ready(apply(victim.variables, images)), size, seconds)
    return result


def _microbatch(victim, config, images) -> int:
    fitness = make_fitness(config, victim.apply_fn, victim.variables, np.shape(images)[1:], module=victim.module)
    return fitness.microbatch


def peak_memory() -> dict[str, float | None]:
    """Peak host RSS of this process and peak device memory so far, in MiB.

    Both are high-water marks (neither can be reset), so measurements taken in
    increasing batch size show each size's peak. Device memory is None where the
    backend keeps no statistics (CPU).
    """
    host_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    stats = jax.devices()[0].memory_stats() or {}
    device = stats.get("peak_bytes_in_use")
    return {"host_peak_rss_mib": round(host_kib / 1024, 1),
            "device_peak_mib": round(device / 2**20, 1) if device is not None else None}


def forward_memory_scan(victim, batch_sizes: Sequence[int], seconds: float = 1.0) -> list[dict[str, Any]]:
    """Forward images/s and peak memory at increasing batch sizes, up to the first that
    does not fit (its row carries the error): the largest batch that fits is the last
    row without one."""
    rows = []
    for size in sorted(batch_sizes):
        try:
            rate = forward_throughput(victim, [size], seconds)[size]
        except (jax.errors.JaxRuntimeError, MemoryError) as error:
            rows.append({"batch": int(size), "error": str(error).splitlines()[0][:200], **peak_memory()})
            break
        rows.append({"batch": int(size), "img_per_s": round(rate, 1), **peak_memory()})
    return rows


def timed_attack(victim, images: np.ndarray, labels: np.ndarray, image_indices: np.ndarray, config,
                 targets: np.ndarray | None = None, profile_dir: str | None = None
                 ) -> tuple[Any, float, dict[str, Any]]:
    """(AttackResults, wall seconds, compilation facts) of the attack, timed on its second
    run: the first, untimed, is the identical attack (same problems and PRNG streams), so
    it meets every shape the timed one does. The runner's refill buckets and the api's
    verification batches follow which problems finish when: a warm-up on other PRNG
    streams finishes otherwise and left programs to compile inside the timing.

    The facts: `attack_first_run_s` (the first run's wall), `attack_compile_s` (its
    extra wall over the timed run: compiling, tracing included), `attack_xla_compile_s`
    and `attack_programs_compiled` (XLA's compilations in it), and
    `attack_programs_compiled_timed` (in the timed run: 0 unless a shape escaped).

    `profile_dir`: also record a jax.profiler trace of the timed run there (TensorBoard /
    Perfetto), to see where an attack below its forward limit spends the difference.
    """
    with counting_compilations() as first:
        started = time.perf_counter()
        attack(victim, images, labels, config, targets=targets, image_indices=image_indices)
        first_wall = time.perf_counter() - started
    tracing = jax.profiler.trace(profile_dir) if profile_dir else contextlib.nullcontext()
    with tracing, counting_compilations() as timed:
        started = time.perf_counter()
        results = attack(victim, images, labels, config, targets=targets, image_indices=image_indices)
        wall = time.perf_counter() - started
    facts = {"attack_first_run_s": round(first_wall, 2), "attack_compile_s": round(max(first_wall - wall, 0.0), 2),
             "attack_xla_compile_s": round(first.seconds, 2), "attack_programs_compiled": first.count,
             "attack_programs_compiled_timed": timed.count}
    return results, wall, facts


def deattack_run(results, wall_s: float, image_indices: np.ndarray) -> AttackRun:
    """The attack's records as an AttackRun (one problem an image), in image order; the
    images are attacked together, so each gets an even share of the wall time."""
    by_image = {int(r["image_index"]): r for r in results.records}
    if len(by_image) != len(results.records):
        raise ValueError("deattack_run needs one problem an image (untargeted, or one target each)")
    records = [by_image[int(i)] for i in image_indices]
    config = results.config
    return AttackRun("deattack", np.asarray([r["success"] for r in records], bool),
                     np.asarray([r["queries"] for r in records], np.int64),
                     np.full(len(records), wall_s / max(len(records), 1)),
                     settings={"population_size": config.population_size,
                               "max_generations": config.max_generations,
                               "strategy": f"{config.mutation}/{config.crossover}/{config.adaptation}",
                               "F": config.differential_weight, "slots": config.slots})


def run_peers(victim, images: np.ndarray, labels: np.ndarray, image_indices: np.ndarray, config,
              peers: Sequence[str], targets: np.ndarray | None = None,
              port_images: np.ndarray | None = None) -> tuple[list[AttackRun], dict[str, Any]]:
    """The peers on the same images at the config's budget, and facts about the torch side
    (the port's max |logit difference| on `port_images`, the port's forward images/s).

    torch is imported here only when a torch peer is asked for.
    """
    runs, facts = [], {}
    if "scipy" in peers:
        runs.append(scipy_attack(victim, images, labels, config, image_indices=image_indices, targets=targets))
    torch_peers = [name for name in peers if name in ("torchattacks", "art")]
    if torch_peers:
        # torch is an optional extra ([bench]): imported only when a torch peer is asked for
        from deattack.bench.peers import runners, torch_port

        module = torch_port.port(victim)
        check = port_images if port_images is not None else images
        facts["port_max_logit_diff"] = torch_port.check_port(victim, module, check)
        facts["port_checked_images"] = int(len(check))
        facts["torch_forward_img_per_s_by_batch"] = {
            str(k): round(v, 1) for k, v in runners.torch_forward_throughput(module, [64, 128, 256]).items()}
        budget = dict(pixels=config.pixels, population_size=config.population_size,
                      max_generations=config.max_generations, targets=targets, seed=config.seed)
        if "torchattacks" in torch_peers:
            runs.append(runners.torchattacks_attack(victim, module, images, labels, **budget))
        if "art" in torch_peers:
            runs.append(runners.art_attack(victim, module, images, labels, **budget))
    return runs, facts


def attack_vs_forward(victim, images: np.ndarray, labels: np.ndarray, image_indices: np.ndarray,
                      config, batch_sizes: Sequence[int], *, peers: Sequence[str] = (),
                      targets: np.ndarray | None = None, port_images: np.ndarray | None = None,
                      forward_seconds: float = 2.0, peer_images: int | None = None,
                      profile_dir: str | None = None) -> dict[str, Any]:
    """Forward limit, attack queries/s and their ratio, and the peers at equal budget,
    measured side by side.

    `speedup_vs_<peer>` is the peer's wall time per image over deattack's on the same
    images; `comparison` holds each side's success rate, queries and queries/s, and
    the speedup split into faster evaluation and fewer queries.

    `peer_images` runs the peers on the first k images only (a GPU attacks hundreds of
    images at once; the peers go one by one): both sides are then compared on those k,
    deattack's wall per image still being its whole run's wall over all its images.
    """
    image_indices = np.asarray(image_indices, np.int64)
    microbatch = _microbatch(victim, config, images)
    # The attack's own forward batch is scanned too: the limit at the shape it runs.
    batch_sizes = sorted({int(size) for size in batch_sizes} | {int(microbatch)})
    before = forward_throughput(victim, batch_sizes, forward_seconds)
    results, wall, compilation = timed_attack(victim, images, labels, image_indices, config, targets, profile_dir)
    shared = len(images) if peer_images is None else max(1, min(int(peer_images), len(images)))
    peer_runs, facts = run_peers(victim, images[:shared], labels[:shared], image_indices[:shared], config, peers,
                                 None if targets is None else targets[:shared], port_images)
    after = forward_throughput(victim, batch_sizes, forward_seconds)
    forward = {size: (before[size] + after[size]) / 2 for size in before}
    best = max(forward, key=forward.get)
    queries = results.summary["queries_this_run"]
    report = {
        "device": device_name(), "model": victim.name, "pixels": config.pixels, "mode": config.mode,
        "operator": f"{config.mutation}/{config.crossover}/{config.adaptation}",
        "population_size": config.population_size, "max_generations": config.max_generations,
        "slots": config.slots, "images": int(len(images)), "forward": config.forward,
        "microbatch": microbatch,
        "forward_img_per_s_by_batch": {str(k): round(v, 1) for k, v in forward.items()},
        "forward_img_per_s": round(forward[best], 1), "forward_best_batch": best,
        "forward_img_per_s_at_attack_batch": round(forward[microbatch], 1),
        "attack_queries": int(queries), "attack_wall_s": round(wall, 2),
        "attack_queries_per_s": round(queries / wall, 1), **compilation,
        "ratio_to_forward": round(queries / wall / forward[best], 3),
        "success_rate": results.summary["success_rate"],
        "queries_median": results.summary["queries_median"],
    }
    if peer_runs:
        everything = deattack_run(results, wall, image_indices)
        ours = AttackRun("deattack", everything.success[:shared], everything.queries[:shared],
                         everything.wall_s[:shared], everything.settings)
        comparison = {"deattack": ours.summary()}
        if shared < len(images):
            comparison["deattack_all_images"] = everything.summary()
            report["peer_images"] = shared
        for run in peer_runs:
            comparison[run.name] = {**run.summary(), **speedup(ours, run)}
            report[f"speedup_vs_{run.name}"] = comparison[run.name]["speedup"]
            report[f"{run.name}_success_rate"] = comparison[run.name]["success_rate"]
        report.update(facts)
        report["comparison"] = comparison
    report.update(peak_memory())
    return report


def scaling(victim, images: np.ndarray, labels: np.ndarray, config, *, slots: Sequence[int] = (),
            populations: Sequence[int] = ()) -> list[dict[str, Any]]:
    """Queries/s against images in flight (slots) and against population size.

    Each setting attacks as many images as it has slots (all in flight at once), after
    a warm-up of the same shapes. confidence=0.9999 keeps every problem running to the
    budget (an early stop would empty slots and measure the tail, not the throughput);
    queries are counted exactly either way.
    """
    settings = [dataclasses.replace(config, slots=s) for s in slots]
    settings += [dataclasses.replace(config, population_size=p) for p in populations]
    if any(setting.slots > len(images) for setting in settings):
        raise ValueError(f"scaling to {max(s.slots for s in settings)} slots needs as many images, got {len(images)}")
    rows = []
    for setting in settings:
        setting = dataclasses.replace(setting, confidence=0.9999)
        count = setting.slots
        results, wall, compilation = timed_attack(victim, images[:count], labels[:count], np.arange(count), setting)
        queries = results.summary["queries_this_run"]
        rows.append({"slots": setting.slots, "population_size": setting.population_size,
                     "max_generations": setting.max_generations, "images_in_flight": count,
                     "queries": int(queries), "wall_s": round(wall, 3),
                     "queries_per_s": round(queries / wall, 1),
                     "programs_compiled_timed": compilation["attack_programs_compiled_timed"], **peak_memory()})
    return rows
