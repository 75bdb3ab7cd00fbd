# Two commands for a newcomer: `make test` and `make figures`. Each sets itself up from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch-fidelity imports torchvision; this pair installs from the local disk on our Debian machines.
# Elsewhere pick any matching pair, e.g. `make test TORCH_SPEC="torch torchvision"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PROFILE ?= default
STAMP := $(VENV)/.installed
DATA := data/FashionMNIST/raw/t10k-labels-idx1-ubyte
BROWSER := /usr/bin/chromedriver

.PHONY: test figures zoo certify train-speed student docs executed setup data browser lab readme export clean-nbs sync-check help

help:
	@echo "make test      run every notebook's tests (nbdev_test) and pytest"
	@echo "make figures   run the experiment notebooks with papermill (PROFILE=smoke|default|gpu|zoo; zoo-diffusion, zoo-maskgit: one family of the shipped reference zoo, zoo: both)"
	@echo "make zoo       train the reference zoo from nothing, or resume it (ZOO_MINUTES=120 stops after 2 hours); commit data/zoo/"
	@echo "make certify   after a training-code change: replay the zoo's first training steps with it; certify it where it trains the same"
	@echo "make train-speed  time the zoo recipes' training under each option, side by side (figures/train_speed.*)"
	@echo "make student   write the student release (no solutions, no hidden checks) to student/ (STUDENT=path); grade with python -m elt.course grade"
	@echo "make lab       open the notebooks in JupyterLab"
	@echo "make docs      render every notebook into the book, _book/index.html (nbconvert, math offline)"
	@echo "make executed  rerun the library notebooks that changed into executed/, the copies readers see with outputs (FORCE=1: all)"
	@echo "make readme    regenerate README.md and figures/README.md from nbs/index.ipynb and nbs/results.ipynb"
	@echo "make export    notebooks -> elt/ (nbdev_export) and nbdev_clean"

setup: $(STAMP)

$(STAMP): settings.ini setup.py pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name elt --display-name "Python (elt)" >/dev/null
	@touch $@

# Fashion-MNIST: Debian's package when we can install it (root + apt); elt.data falls back to a download.
data: $(DATA)

$(DATA): | $(STAMP)
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's dataset-fashion-mnist"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; fi
	$(BIN)/python -c "from elt.data import ensure_fashion_mnist; print('Fashion-MNIST ready in', ensure_fashion_mnist())"

# Headless Chromium and its driver for the any-time viewer's browser test: Debian's packages when we can install them.
browser: $(BROWSER)

$(BROWSER):
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium and chromium-driver (the viewer's browser test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "not root: install chromium and chromedriver yourself for tests/test_viewer_browser.py"; fi

test: $(STAMP) $(DATA) $(BROWSER)
	$(BIN)/python tests/test_layers.py
	$(BIN)/nbdev_test --n_workers 2 --timing
	$(BIN)/python -m pytest -q tests

figures: $(STAMP) $(DATA)
	$(BIN)/python -m elt.experiments.run --profile $(PROFILE)

# The reference zoo (nbs/14a_zoo.ipynb): trained in pieces of ZOO_MINUTES (0: until complete), shipped to data/zoo/.
ZOO_MINUTES ?= 0
zoo: $(STAMP) $(DATA)
	$(BIN)/python -m elt.experiments.zoo --minutes $(ZOO_MINUTES)

# After a change to the training code: replay the zoo's first training steps with it; where it trains the same, certify it.
certify: $(STAMP) $(DATA)
	$(BIN)/python -m elt.experiments.zoo --certify

# The training benchmark of the zoo's recipes (nbs/14b_train_speed.ipynb): ratios measured side by side in one run.
train-speed: $(STAMP) $(DATA)
	$(BIN)/python -m elt.experiments.train_speed --images 960

# The course's student release (nbs/00b_course.ipynb): the project without solutions or hidden checks, to hand out.
STUDENT ?= student
student: $(STAMP)
	$(BIN)/python -m elt.course release $(STUDENT)

# The book: every notebook rendered with nbconvert (library notebooks executed), navigation in the paper's order.
docs: $(STAMP) $(DATA)
	$(BIN)/python -m elt.docs

# The executed copies of the library notebooks (executed/): reruns those whose notebook changed; FORCE=1 reruns every one.
executed: $(STAMP) $(DATA)
	$(BIN)/python -m elt.docs --executed $(if $(FORCE),--force)

lab: $(STAMP) $(DATA)
	$(BIN)/jupyter lab nbs

export: $(STAMP)
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean

# Quarto (which nbdev_readme needs) is not installable everywhere; nbconvert gives the same markdown.
readme: $(STAMP)
	$(BIN)/python -c "from elt.experiments.pages import write_readme; print(write_readme())"
