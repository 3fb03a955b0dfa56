"""superalign: attacker -> learner -> critic loops, alternating competence/conformity
optimization, weak-to-strong, scalable oversight and trustworthy evaluation."""
__version__ = "0.1.0"
