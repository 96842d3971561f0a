"""VisualBERT configuration and the nine published checkpoints (uclanlp/<name> on the HuggingFace hub)."""

from paddlenlp.transformers.configuration_utils import PretrainedConfig

__all__ = ["VisualBertConfig", "PRETRAINED_CHECKPOINTS"]

# name -> (head class, visual_embedding_dim, num_labels). Every one is BERT-base uncased with the defaults below.
PRETRAINED_CHECKPOINTS = {
    "visualbert-vqa": ("VisualBertForQuestionAnswering", 2048, 3129),
    "visualbert-vqa-pre": ("VisualBertForPreTraining", 2048, 2),
    "visualbert-vqa-coco-pre": ("VisualBertForPreTraining", 2048, 2),
    "visualbert-nlvr2": ("VisualBertForVisualReasoning", 1024, 2),
    "visualbert-nlvr2-pre": ("VisualBertForPreTraining", 1024, 2),
    "visualbert-nlvr2-coco-pre": ("VisualBertForPreTraining", 1024, 2),
    "visualbert-vcr": ("VisualBertForMultipleChoice", 512, 2),
    "visualbert-vcr-pre": ("VisualBertForPreTraining", 512, 2),
    "visualbert-vcr-coco-pre": ("VisualBertForPreTraining", 512, 2),
}


class VisualBertConfig(PretrainedConfig):
    """Configuration of a VisualBERT model; field names and defaults are those of HF transformers' VisualBertConfig."""

    model_type = "visual_bert"
    pretrained_init_configuration = {
        name: {"architectures": [arch], "visual_embedding_dim": dim, "num_labels": num_labels}
        for name, (arch, dim, num_labels) in PRETRAINED_CHECKPOINTS.items()
    }

    def __init__(
        self,
        vocab_size: int = 30522,  # bert-base-uncased wordpieces
        hidden_size: int = 768,
        visual_embedding_dim: int = 512,  # size of one region feature: 2048 VQA/COCO, 1024 NLVR2, 512 VCR
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",  # exact (erf) gelu, as BERT
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,  # BERT's; Paddle's LayerNorm default (1e-5) would change every output
        bypass_transformer: bool = False,  # text-only encoder + one extra layer over text and boxes
        special_visual_initialize: bool = True,  # visual type/position embeddings start as copies of the text ones
        pad_token_id: int = 1,
        bos_token_id: int = 0,
        eos_token_id: int = 2,
        **kwargs,
    ):
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.visual_embedding_dim = visual_embedding_dim
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.bypass_transformer = bypass_transformer
        self.special_visual_initialize = special_visual_initialize
