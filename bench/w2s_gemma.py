"""Issue 26's second declared weak-to-strong design, under the name of the results file it writes:
`python bench/w2s_gemma.py [--set threads=2]` runs `bench/w2s.py --design gemma` (the base Gemma 3 270M as the LoRA
student, float32, sarcasm, headline seeds 13-15, all declared in bench/w2s.py as GEMMA / GEMMA_SEEDS before any
ran), prints every figure and writes bench/results/w2s_gemma.json. Every other option of bench/w2s.py applies
(`--merge bench/results/w2s_gemma.json` reprints the kept results in seconds)."""
import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    if any(x == "--design" or x.startswith("--design=") for x in sys.argv[1:]):
        sys.exit("bench/w2s_gemma.py runs the gemma design; for another, run bench/w2s.py --design NAME")
    sys.argv = [str(Path(__file__).with_name("w2s.py")), "--design", "gemma", *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
