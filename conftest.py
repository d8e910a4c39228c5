"""Test-session defaults: notebooks run in FAST mode unless told otherwise.

Set COURSE_FAST=0 to execute the notebooks at full size, COURSE_DATASET=netflix to
run them offline on the Netflix file (what CI does).
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
