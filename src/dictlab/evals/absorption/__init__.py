"""Label-based feature absorption (Chanin et al., arXiv 2409.14507): first letters as SAEBench measures them, WordNet
lexnames as a hierarchy version, and the agreement with dictlab's label-free hierarchy diagnosis.

Each eval has two steps: ``*_data(language_model, module, options)`` runs the model and fits the probe (no SAE;
reuse it for every SAE of that module), then ``*_absorption(dictionary, data, options)`` scores one SAE.
"""

from dictlab.evals.absorption.agreement import AbsorptionAgreement, AgreementOptions, absorption_agreement
from dictlab.evals.absorption.first_letter import (
    EVAL_TYPE_ID,
    FirstLetterAbsorptionOptions,
    FirstLetterAbsorptionResult,
    FirstLetterData,
    FirstLetterOptions,
    first_letter_absorption,
    first_letter_data,
)
from dictlab.evals.absorption.summary import absorption_markdown
from dictlab.evals.absorption.wordnet import (
    WordNetAbsorptionOptions,
    WordNetAbsorptionResult,
    WordNetOptions,
    wordnet_absorption,
    wordnet_data,
)

__all__ = [
    "EVAL_TYPE_ID",
    "AbsorptionAgreement",
    "AgreementOptions",
    "FirstLetterAbsorptionOptions",
    "FirstLetterAbsorptionResult",
    "FirstLetterData",
    "FirstLetterOptions",
    "WordNetAbsorptionOptions",
    "WordNetAbsorptionResult",
    "WordNetOptions",
    "absorption_agreement",
    "absorption_markdown",
    "first_letter_absorption",
    "first_letter_data",
    "wordnet_absorption",
    "wordnet_data",
]
