.PHONY: demo test protos lint

demo:  ## set up and run the embedded default (collector on SQLite + local agent)
	scripts/demo.sh

test:  ## set up and run every check CI runs
	scripts/test.sh

protos:  ## regenerate canhgac/v1 from protos/
	.venv/bin/python scripts/gen_protos.py
