"""PaddleNLP's Auto classes answer to VisualBERT: `AutoModel.from_pretrained(<a VisualBERT folder>)` returns
VisualBertModel with its weights, not a BertModel with random ones.

PaddleNLP picks a folder's class by the first entry of its MAPPING_NAMES that the config's architecture contains,
and "Bert" is in "VisualBertFor...": VisualBert goes first. Each Auto class then imports
`paddlenlp.transformers.visualbert.modeling` (registered by paddlenlp_ext.transformers) and takes the class below; an
Auto class with no VisualBERT head gets PaddleNLP's error listing the classes there is, never a BERT.
AutoTokenizer needs nothing: VisualBERT's tokenizer is BERT's, and the folders this project saves hold its
tokenizer_config.json (a folder without one is recognised by its name, where "bert" matches "visualbert").
"""

from paddlenlp.transformers.auto import modeling as auto_modeling

from .visualbert.configuration import PRETRAINED_CHECKPOINTS

# Auto class -> the VisualBERT class it returns. NLVR2 is a classification of a statement about an image pair, the
# role PaddleNLP names ForSequenceClassification.
HEADS = {
    "AutoModel": "VisualBertModel",
    "AutoBackbone": "VisualBertModel",
    "AutoModelForPretraining": "VisualBertForPreTraining",
    "AutoModelForQuestionAnswering": "VisualBertForQuestionAnswering",
    "AutoModelForMultipleChoice": "VisualBertForMultipleChoice",
    "AutoModelForSequenceClassification": "VisualBertForVisualReasoning",
}
_FLAG, _MODULE = "VisualBert", "visualbert"


def _auto_classes():
    return [
        cls
        for cls in vars(auto_modeling).values()
        if isinstance(cls, type)
        and issubclass(cls, auto_modeling._BaseAutoModelClass)
        and cls is not auto_modeling._BaseAutoModelClass
    ]


def register():
    """Put VisualBERT into PaddleNLP's Auto model and tokenizer mappings (idempotent)."""
    names = auto_modeling.MAPPING_NAMES
    if _FLAG not in names:
        rest = list(names.items())
        names.clear()
        names[_FLAG] = _MODULE
        names.update(rest)
    for auto in _auto_classes():
        mapping = auto._name_mapping
        # Every Auto class maps BERT as "BertModel_Import_Class" -> "Bert<its task>": VisualBERT's class of that task.
        task = mapping["BertModel_Import_Class"][len("Bert") :]
        head = HEADS.get(auto.__name__, _FLAG + task)
        mapping[_FLAG + "Model_Import_Class"] = head
        mapping[head] = _MODULE
        auto._pretrained_model_dict[tuple(PRETRAINED_CHECKPOINTS)] = _FLAG + "Model"
