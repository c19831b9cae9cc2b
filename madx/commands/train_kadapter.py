"""madx train-kadapter: train a K-adapter (Wang et al. 2021) beside the frozen base encoder on a knowledge task.

Types: dependency (each word's head, from CoNLL-U treebanks: a linguistic K-adapter; scored by UAS) and relation
(the relation between two marked spans, JSONL with text, subject, object, relation: a factual one; scored by
accuracy). --train and --dev take one file or several (several languages' treebanks, say). The weights of the best
dev score are kept. Writes OUTPUT: kadapter_config.json, kadapter.safetensors (madx's format, with checksums),
knowledge.json (data, settings, dev scores beside the trivial baseline) and train_log.jsonl. A task reads it with
`madx train-task --knowledge OUTPUT`.
"""

from __future__ import annotations

import argparse

from ..adapters.kadapter import KAdapterConfig
from ..core.settings import KnowledgeTraining
from ..tasks.knowledge import KNOWLEDGE_TASKS
from .common import add_dataclass_args, add_model_args, dataclass_from, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madx train-kadapter", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--name", required=True, help="the K-adapter's name (what tasks read it by)")
    p.add_argument("--type", required=True, choices=list(KNOWLEDGE_TASKS), help="the knowledge task")
    p.add_argument("--train", required=True, nargs="+", metavar="FILE")
    p.add_argument("--dev", required=True, nargs="+", metavar="FILE")
    p.add_argument("--output", required=True)
    add_dataclass_args(p, KAdapterConfig(), title="K-adapter")
    add_dataclass_args(p, KnowledgeTraining(), title="training")
    return p


def _body(args) -> None:
    from ..training.kadapter import train_kadapter_job

    train_kadapter_job(args.base_model, args.name, args.type, args.train, args.dev, args.output,
                       dataclass_from(KAdapterConfig, args, layers=tuple(args.layers)),
                       dataclass_from(KnowledgeTraining, args), trust_remote_code=args.trust_remote_code)


def main(argv=None) -> int:
    return run(parser(), _body, argv)
