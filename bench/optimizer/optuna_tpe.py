"""Runs Optuna's TPE sampler on the benchmark surfaces exported by main.ts.

Reads one JSON document on stdin (surfaces with their grids and a table of true outcomes) and
writes {"<surface>": [trials-to-target or null per seed]} on stdout. Each study starts with the
baseline (enqueued), sees the same noise model as the TypeScript methods and is scored on the true
value of what it tried. Constraints reach TPE through ``Trial.set_constraint`` (<= 0 means met):
for a surface that exports metric bounds, one graded value per bound, the measured metric's
relative violation (so TPE, like ours, can tell a near miss from a far one); otherwise 0 (met)
or 1 (broken).
"""
import json
import random
import sys

import optuna


def run(surface, seed):
    dims = surface["dims"]
    table_obj = surface["objective"]
    table_ok = surface["feasible"]
    bounds = surface.get("bounds", [])
    metrics = surface.get("metrics", {})
    metric_noise = surface.get("metric_noise", 0)
    sign = 1 if surface["direction"] == "maximize" else -1
    best = surface["optimum"]
    noise = random.Random(seed * 7919 + 99)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction=surface["direction"], sampler=sampler)
    study.enqueue_trial({d["name"]: d["values"][d["baseline"]] for d in dims if len(d["values"]) > 1})
    for t in range(1, surface["max_trials"] + 1):
        trial = study.ask()
        index = 0
        for d in dims:
            values = d["values"]
            if len(values) == 1:
                i = 0
            elif d["kind"] == "enum":
                i = values.index(trial.suggest_categorical(d["name"], values))
            elif d["integer"]:
                v = trial.suggest_int(d["name"], values[0], values[-1], step=d["step"])
                i = round((v - values[0]) / d["step"])
            else:
                v = trial.suggest_float(d["name"], values[0], values[-1], step=d["step"])
                i = round((v - values[0]) / d["step"])
            index = index * len(values) + i
        truth = table_obj[index]
        ok = table_ok[index]
        if ok and sign * truth >= sign * best - 0.05 * abs(best):
            return t
        if bounds:
            for k, b in enumerate(bounds):
                measured = max(0.0, metrics[b["metric"]][index] * (1 + metric_noise * noise.gauss(0, 1)))
                over = measured - b["limit"] if b["upper"] else b["limit"] - measured
                trial.set_constraint(f"c{k}", over / max(abs(b["limit"]), 1e-9))
        elif surface["constrained"]:
            # Optuna 5 reads constraints from the trial: <= 0 means met.
            trial.set_constraint("slo", 0.0 if ok else 1.0)
        study.tell(trial, truth * (1 + surface["noise"] * noise.gauss(0, 1)))
    return None


def main():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = json.load(sys.stdin)
    out = {}
    for surface in spec["surfaces"]:
        out[surface["name"]] = [run(surface, seed) for seed in spec["seeds"]]
        print(f"optuna: {surface['name']} done", file=sys.stderr, flush=True)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
