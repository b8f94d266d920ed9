#!/usr/bin/env python3
"""gen-pysuite.py DIR MODULES TESTS: a unittest suite of MODULES files x TESTS tests under DIR/tests.
Each test writes, reads and lists files in a scratch directory of the workspace; every 3rd test
also runs /bin/sh -c 'echo ...' and every 10th a Python subprocess, the way suites shell out."""
import os
import sys

root, modules, tests = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tdir = os.path.join(root, "tests")
os.makedirs(tdir, exist_ok=True)
open(os.path.join(tdir, "__init__.py"), "w").close()
HEAD = '''import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SCRATCH = os.path.join(os.getcwd(), "scratch")


class T(unittest.TestCase):
    def setUp(self):
        os.makedirs(SCRATCH, exist_ok=True)
        self.d = tempfile.mkdtemp(dir=SCRATCH)

    def tearDown(self):
        shutil.rmtree(self.d)

    def roundtrip(self, i):
        p = os.path.join(self.d, "data%d.json" % i)
        with open(p, "w") as f:
            json.dump({"i": i, "xs": list(range(50))}, f)
        for k in range(20):
            with open(os.path.join(self.d, "f%d.txt" % k), "w") as f:
                f.write("line\\n" * (k + i % 10))
        with open(p) as f:
            self.assertEqual(json.load(f)["i"], i)
        self.assertEqual(len(os.listdir(self.d)), 21)
        for k in range(20):
            with open(os.path.join(self.d, "f%d.txt" % k)) as f:
                self.assertTrue(f.read().startswith("line") or k + i % 10 == 0)

    def shell(self, i):
        out = subprocess.run(["/bin/sh", "-c", "echo %d" % i], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), str(i))

    def python(self, i):
        out = subprocess.run([sys.executable, "-c", "import json; print(json.dumps(%d))" % i],
                             capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), str(i))
'''
for m in range(modules):
    with open(os.path.join(tdir, f"test_m{m:02d}.py"), "w") as f:
        f.write(HEAD)
        for t in range(tests):
            i = m * tests + t
            f.write(f"\n    def test_{t:03d}(self):\n        self.roundtrip({i})\n")
            if i % 3 == 0:
                f.write(f"        self.shell({i})\n")
            if i % 10 == 0:
                f.write(f"        self.python({i})\n")
