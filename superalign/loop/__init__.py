"""The attacker -> learner -> critic loop (`run.Loop`), its config (`config`), executors and report."""
