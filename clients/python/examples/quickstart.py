# %% [markdown]
# # GridMR from Python
# A notebook-style walk through `gridmr_client` (run it as a script, or cell by cell in Jupyter
# or VS Code). It needs a running master: `cargo run --release -- master` and a worker, or the
# cluster `cargo run --example wordcount -- --shared-dir /tmp/gm` leaves (see the README).
# Set GRIDMR_MASTER and SHARED_DIR (or GRIDMR_TOKEN) to point at it.

# %%
import os
import sys

from gridmr_client import Client, GridMRError, JobFailed

gm = Client()  # GRIDMR_MASTER, and the token the gridmr CLI would use
print(gm.health())

# %% [markdown]
# Submit the original GridMR's word count script over a text on the shared folder.

# %%
share = os.environ.get("SHARED_DIR", "/data/shared")
script, text = sys.argv[1:3] if len(sys.argv) > 2 else (f"{share}/wordcount.py", f"{share}/books")
job = gm.submit(script_url=script, input_url=text, partitions=2, force_distributed=True)
print(job["job_id"], job["mode"], job["status"])

# %% [markdown]
# Follow it: `wait` long-polls the master (no busy loop) and raises `JobFailed` if it fails.

# %%
try:
    done = gm.wait(job["job_id"], timeout=600, on_progress=lambda s: print(" ", s["message"]))
except JobFailed as e:
    print("failed:", e.error)
    raise

print(done["times"]["t_total_s"], "s;", done["counters"]["gridmr"]["output_records"], "words")

# %% [markdown]
# Read the result as `(word, count)` pairs, streamed: the ten most frequent words.

# %%
top = sorted(gm.result_pairs(job["job_id"]), key=lambda kv: -kv[1])[:10]
for word, count in top:
    print(f"{count:8} {word}")

# %% [markdown]
# Errors are the REST API's: an unknown job is a 404 whose body says `UNKNOWN`.

# %%
try:
    gm.status("job-999999")
except GridMRError as e:
    print(e.status, e.job_state, e.error)
