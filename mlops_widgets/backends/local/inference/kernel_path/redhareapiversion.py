"""Stand-in for WMLA's `redhareapiversion`: kernels import it bare before `redhareapi`.

Only kernel processes of mlops-widgets' local inference service have this folder on sys.path.
"""

__version__ = "mlops-widgets-local"
