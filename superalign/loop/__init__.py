"""The attacker -> learner -> critic loop: config, the round driver (run), one module per stage, report, ui."""
