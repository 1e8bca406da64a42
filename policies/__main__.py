"""Entry point of the policy pack: builds the PolicyPack (this starts its gRPC server and blocks).

The engine runs this file as `python -m pulumi.policy <engine> .` from this folder, so the folder
itself is on sys.path, not its parent; the parent is added so that the policies import as the
`policies` package, as they do in tests and tools.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pulumi_policy import PolicyPack

from policies import pack_arguments

PolicyPack(**pack_arguments())
