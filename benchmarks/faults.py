"""Kill a training run with SIGKILL at random moments, resume it each time, and report the steps each kill lost and
the final return beside an uninterrupted run's: resuming must lose no more than a checkpoint interval. Then three
faults of issue 20: SIGTERM during an evaluation, a second Ctrl-C during the save it asked for, and N trainers
launched at the same instant (each must get a run of its own)."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's rlkit, without PYTHONPATH or an install

from benchmarks.common import benchmark_parser, print_table, write_results  # noqa: E402
from rlkit.checkpoint import load_checkpoint  # noqa: E402

PROGRESS = re.compile(r"(\d+)/(\d+) \[")


def start(args: list[str], cwd: Path = REPO) -> tuple[subprocess.Popen, dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rlkit.train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = {"step": 0, "stdout": [], "started": threading.Event(), "evaluating": threading.Event()}

    def read_stdout() -> None:
        for line in proc.stdout:
            seen["stdout"].append(line)
            if line.startswith("rlkit: env="):
                seen["started"].set()

    def read_progress() -> None:  # tqdm redraws with \r: read characters, keep the latest step
        buffer = ""
        while chunk := proc.stderr.read(1):
            buffer = (buffer + chunk)[-200:]
            if "evaluation at step" in buffer:
                seen["evaluating"].set()
            if chunk == "[":
                found = PROGRESS.findall(buffer)
                if found:
                    seen["step"] = int(found[-1][0])

    threading.Thread(target=read_stdout, daemon=True).start()
    threading.Thread(target=read_progress, daemon=True).start()
    return proc, seen


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--env", default="cartpole")
    parser.add_argument("--total-steps", type=int, default=50_000)
    parser.add_argument("--checkpoint-every", type=int, default=5_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times (the run uses seed=0)")
    parser.add_argument("--launch", type=int, default=8, help="trainers launched at the same instant")
    parser.add_argument("--sigint-delays", type=float, nargs="+", default=[0.0, 0.005, 0.02, 0.1, 0.3],
        help="seconds between the first Ctrl-C (which saves) and the second, one run each")
    parser.add_argument("--normal-min", type=float, default=None, help="lowest final return counted as normal")
    parser.add_argument(
        "--log-every", type=int, default=1000, help="env steps between progress updates (the kill clock)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.total_steps, args.checkpoint_every, args.kills, args.log_every = 3000, 1000, 1, 100
        args.launch, args.sigint_delays = 2, [0.01]
    rng = random.Random(args.seed)

    run_dir = Path(tempfile.mkdtemp(prefix="rlkit-faults-")) / "run"
    base = [f"env={args.env}", f"total_steps={args.total_steps}", f"checkpoint.every_steps={args.checkpoint_every}",
            f"log_every_steps={args.log_every}", "progress=true", f"hydra.run.dir={run_dir}"]
    # One uninterrupted run of the same config gives the normal final return (skipped by --smoke: one process less).
    reference_return = None
    if not args.smoke:
        proc, seen = start([*base[:-1], f"hydra.run.dir={run_dir.parent / 'reference'}"])
        proc.wait()
        time.sleep(0.2)
        reference_return = final_return("".join(seen["stdout"]))

    # Kill moments: 5 env steps drawn uniformly over the run; each run is killed once its progress reaches the next one.
    targets = sorted(rng.sample(range(args.checkpoint_every // 2, args.total_steps), args.kills))
    kills = []
    args_now = base
    for k, target in enumerate(targets):
        resumed_from = checkpoint_step(run_dir) or 0
        proc, seen = start(args_now)
        if not seen["started"].wait(timeout=120):
            proc.kill()
            raise SystemExit(f"run did not start: {proc.stderr.read()[-2000:]}")
        while seen["step"] < target and proc.poll() is None:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.6)  # let the reader thread drain the last progress line
        # Steps lost: the step the killed run had reached (from its progress bar, which moves in log_every_steps
        # strides, so a slight under-estimate) minus the step of the checkpoint it resumes from.
        reached, saved = seen["step"], checkpoint_step(run_dir)
        kills.append({"kill": k + 1, "target_step": target, "started_from": resumed_from, "reached_step": reached,
                      "checkpoint_step": saved, "steps_lost": max(0, reached - (saved or 0))})
        print(f"kill {k + 1}: from {resumed_from}, killed at ~{reached}, last checkpoint {saved}, "
              f"lost ~{kills[-1]['steps_lost']} steps", flush=True)
        if not saved:  # killed before its first checkpoint: start afresh (a new run refuses a folder that holds one)
            shutil.rmtree(run_dir, ignore_errors=True)
        args_now = [f"resume={run_dir}", "progress=true"] if saved else base
        if saved == args.total_steps:
            break

    final = subprocess.run([sys.executable, "-m", "rlkit.train", *args_now], cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    completed = final.returncode == 0
    final_step = checkpoint_step(run_dir)
    figures = {
        "env": args.env, "total_steps": args.total_steps, "checkpoint_every": args.checkpoint_every,
        "kills": kills, "runs_completed": int(completed), "final_step": final_step,
        "final_step_is_total": final_step == args.total_steps,
        "max_steps_lost": max(k["steps_lost"] for k in kills) if kills else 0,
        "steps_lost_within_interval": all(k["steps_lost"] <= args.checkpoint_every for k in kills),
        "final_return": final_return(final.stdout) if completed else None,
        "reference_return": reference_return,
    }
    if args.normal_min is not None and figures["final_return"] is not None:
        figures["final_return_normal"] = figures["final_return"] >= args.normal_min
    if not completed:
        print(final.stderr[-3000:])
    print(f"\n{args.env}: {args.kills} SIGKILLs, checkpoint every {args.checkpoint_every} steps")
    print_table(("kill", "from step", "reached", "checkpoint", "steps lost"),
                [(k["kill"], k["started_from"], k["reached_step"], k["checkpoint_step"], k["steps_lost"])
                 for k in kills])
    print(f"completed: {completed}; final step {final_step} (total {args.total_steps}); "
          f"final return {figures['final_return']} (uninterrupted reference: {reference_return})")
    work = run_dir.parent
    figures["sigterm_during_evaluation"] = sigterm_during_evaluation(work / "sigterm", smoke=args.smoke)
    figures["second_sigint_during_save"] = [second_sigint_during_save(work / f"sigint{i}", delay)
        for i, delay in enumerate(args.sigint_delays)]
    figures["parallel_launch"] = parallel_launch(work / "parallel", args.launch)
    term, launch = figures["sigterm_during_evaluation"], figures["parallel_launch"]
    print("\nissue 20 faults (taxi)")
    print_table(("fault", "outcome", "detail"), [
        ("SIGTERM during an evaluation", "saved and resumed" if term["saved"] and term["resumed"] else "FAILED",
            f"{term['steps_lost']} steps lost, exit {term['seconds_to_exit']:.1f} s after the signal"),
        *[(f"2nd Ctrl-C {s['delay']} s into the save", "loadable" if s["loadable"] else "FAILED",
            f"checkpoint step {s['checkpoint_step']}, exit {s['exit']}, {s['stale_temps']} temp files left")
            for s in figures["second_sigint_during_save"]],
        (f"{launch['launched']} trainers at one instant", "one run each" if launch["own_runs"] else "FAILED",
            f"{launch['runs']} runs, {launch['runs_with_own_records']} with their own records"),
    ])
    write_results("faults", figures, results_dir=args.results_dir, echo_json=args.json)


# Untrained greedy Taxi episodes run to the 200-step limit: evaluations that last long enough to be signalled in.
TAXI = {"env": "taxi", "total_steps": 3000, "checkpoint__every_steps": 1000, "eval_every_steps": 1500,
    "eval_episodes": 300, "final_eval_episodes": 1, "log_every_steps": 100, "progress": "true"}


def taxi(**changes: object) -> list[str]:
    return [f"{key.replace('__', '.')}={value}" for key, value in {**TAXI, **changes}.items()]


def sigterm_during_evaluation(run_dir: Path, *, smoke: bool) -> dict:
    """SIGTERM once an evaluation is under way: the run must save and resume; steps lost are those after its save."""
    proc, seen = start([*taxi(eval_episodes=50 if smoke else 300), f"hydra.run.dir={run_dir}"])
    evaluating = seen["evaluating"].wait(timeout=120)
    reached, signalled = seen["step"], time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    seconds_to_exit, saved = time.monotonic() - signalled, checkpoint_step(run_dir)
    resumed = subprocess.run([sys.executable, "-m", "rlkit.train", f"resume={run_dir}", "progress=false"], cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    return {"signalled_in_evaluation": evaluating, "reached_step": reached, "exit": proc.returncode,
        "seconds_to_exit": seconds_to_exit, "saved": saved is not None, "checkpoint_step": saved,
        "steps_lost": max(0, reached - (saved or 0)),
        "resumed": resumed.returncode == 0 and checkpoint_step(run_dir) == TAXI["total_steps"]}


def second_sigint_during_save(run_dir: Path, delay: float) -> dict:
    """Ctrl-C (the run saves), then Ctrl-C again `delay` s later, into the save: the checkpoint must stay loadable."""
    proc, seen = start([*taxi(total_steps=10_000_000, eval_every_steps=0), f"hydra.run.dir={run_dir}"])
    while seen["step"] < 1500 and proc.poll() is None:  # past the first periodic checkpoint
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    proc.wait()
    step = checkpoint_step(run_dir)
    return {"delay": delay, "exit": proc.returncode, "loadable": step is not None, "checkpoint_step": step,
        "stale_temps": len(list(run_dir.glob(".checkpoint.pt.*")))}


def parallel_launch(work: Path, count: int) -> dict:
    """`count` trainers started in one tight loop into default run folders: each must get its own run and records."""
    work.mkdir(parents=True)
    launched = [start(taxi(total_steps=300, eval_every_steps=0, progress="false", seed=seed), cwd=work)[0]
        for seed in range(count)]
    codes = [proc.wait() for proc in launched]
    runs = sorted((work / "runs" / "taxi" / "q_learning").glob("*")) if (work / "runs").is_dir() else []
    own = 0
    for run in runs:
        records = (run / ".hydra" / "overrides.yaml").read_text().splitlines()
        seeds = {line.partition("seed=")[2] for line in records if "seed=" in line}
        own += seeds == {str(load_checkpoint(run)["config"]["seed"])}
    return {"launched": count, "exits": codes, "runs": len(runs), "runs_with_own_records": own,
        "own_runs": len(runs) == count == own and set(codes) == {0}}


def checkpoint_step(run_dir: Path) -> int | None:
    try:
        return int(load_checkpoint(run_dir)["step"])
    except Exception:  # none yet: killed before the first checkpoint
        return None


def final_return(stdout: str) -> float | None:
    match = re.search(r"greedy episodes: return (-?[\d.]+)", stdout)
    return float(match.group(1)) if match else None


if __name__ == "__main__":
    main()
