python3.11 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && pip install -e '.[train,cpu,dev]' && ruff check . && pytest
