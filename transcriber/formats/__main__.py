"""python -m transcriber.formats --js > static/formats.js"""

import sys

from transcriber.formats import javascript

if sys.argv[1:] != ["--js"]:
    sys.exit("usage: python -m transcriber.formats --js > static/formats.js")
sys.stdout.write(javascript())
