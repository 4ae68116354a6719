"""Config fields named once: the CLI's flags and the app's trainer command are derived from the dataclasses."""
import dataclasses

import pytest

from charrnn.cli import build_parser
from charrnn.config import ModelConfig, TrainConfig, config_argv, option_named, options, preset_configs


def test_every_config_field_but_the_vocabulary_size_is_an_option_with_help():
    names = {o.name for cls in (ModelConfig, TrainConfig) for o in options(cls)}
    fields = {f.name for cls in (ModelConfig, TrainConfig) for f in dataclasses.fields(cls)}
    assert names == fields - {"vocab_size"}
    assert all(o.help and o.label for cls in (ModelConfig, TrainConfig) for o in options(cls))


def test_every_option_is_a_flag_of_train_with_its_type_and_choices():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    actions = {a.dest: a for a in train._actions}
    for cls in (ModelConfig, TrainConfig):
        for opt in options(cls):
            action = actions[opt.name]
            assert opt.flag in action.option_strings
            assert action.type is opt.parse and action.help == opt.help
            assert (tuple(action.choices) if action.choices else None) == opt.choices


def parsed_configs(argv: list[str]) -> tuple[ModelConfig, TrainConfig]:
    """What `python -m charrnn train ARGV` would build (the same code path as the CLI)."""
    args = build_parser().parse_args(["train", *argv])
    model = {o.name: getattr(args, o.name) for o in options(ModelConfig)}
    train = {o.name: getattr(args, o.name) for o in options(TrainConfig) if getattr(args, o.name) is not None}
    return preset_configs(args.preset, 7, model, train)


def test_config_argv_rebuilds_the_exact_configs_through_the_cli_parser():
    model_cfg = ModelConfig(vocab_size=7, embed=12, hidden=48, layers=2, dropout=0.25, cell="gru")
    train_cfg = TrainConfig(batch_size=3, seq_len=17, iterations=0, minutes=1.5, lr=0.0123, optimizer="adam",
                            sample_prime="-dash first", autocast="bf16", vocab="printable", unknown="fold",
                            carry_state=True)
    got_model, got_train = parsed_configs(["--preset", "quick", *config_argv(model_cfg), *config_argv(train_cfg)])
    assert got_model == model_cfg and got_train == train_cfg


@pytest.mark.parametrize("text, value", [("true", True), ("False", False), ("1", True), ("off", False)])
def test_a_true_or_false_flag_reads_its_word_not_python_truthiness(text, value):
    _, train = parsed_configs(["--carry-state", text])
    assert train.carry_state is value


def test_a_true_or_false_flag_refuses_other_words():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--carry-state", "maybe"])


def test_config_argv_can_leave_fields_to_the_receiver():
    argv = config_argv(TrainConfig(threads=3), skip=("threads",))
    assert not any(a.startswith("--threads") for a in argv) and "--batch-size=64" in argv


def test_choices_come_from_the_option_and_are_enforced():
    assert option_named(TrainConfig, "optimizer").choices == ("adam", "adamw")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--optimizer", "sgd"])
