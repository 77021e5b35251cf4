"""A small but real CLAP model, built and saved by the tests (no weights can be downloaded here).

transformers' ClapModel from a ClapConfig with a tiny text tower (hidden 32, one layer) and a tiny
HTSAT audio tower (depths [1, 1]), a byte-level BPE tokenizer trained on a few sentences and
wrapped as RobertaTokenizerFast, and ClapFeatureExtractor at 48 kHz. Saved with save_pretrained,
it is loaded through exactly the code users run (ClapModel/ClapProcessor.from_pretrained).
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "this is a sound of", "a dog barking in the park", "rain falling on a roof", "a car horn in the street",
    "domestic animal", "weather", "vehicle", "siren of an ambulance", "birds chirping", "people speaking",
    "glass breaking", "water flowing", "engine idling", "footsteps on a wooden floor", "music playing",
]


def build_tiny_clap(folder: Path, seed: int = 0, projection_dim: int = 16) -> Path:
    """The model saved under `folder`; `projection_dim` 512 gives real CLAP's embedding size (bench/)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 5, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe._tokenizer.post_processor = RobertaProcessing(("</s>", bpe.token_to_id("</s>")), ("<s>", bpe.token_to_id("<s>")))
    tokenizer = RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                     unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=64)
    torch.manual_seed(seed)
    config = ClapConfig(
        text_config=dict(vocab_size=len(tokenizer) + 8, pad_token_id=tokenizer.pad_token_id, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=37, max_position_embeddings=80, projection_dim=projection_dim),
        audio_config=dict(depths=[1, 1], num_attention_heads=[1, 2], hidden_size=32, patch_embeds_hidden_size=16,
                          projection_dim=projection_dim, enable_fusion=False, spec_size=256, window_size=8, num_mel_bins=64),
        projection_dim=projection_dim,
    )
    model = ClapModel(config).eval()
    extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=48000, max_length_s=10, truncation="rand_trunc",
                                     padding="repeatpad")
    model.save_pretrained(folder)
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder
