"""The framework items rules may say they evidence, with their titles.

A rule naming an item not listed here is a rule-file error (a typo would
otherwise silently evidence nothing). Reports use the titles for their
coverage tables.
"""

FRAMEWORKS: dict[str, dict[str, str]] = {
    "nist-ai-rmf": {
        "GOVERN 1.1": "Legal and regulatory requirements involving AI are understood, managed and documented",
        "MAP 2.3": "Scientific integrity and TEVV considerations are identified and documented",
        "MEASURE 2.1": "Test sets, metrics, and details about the tools used during TEVV are documented",
        "MEASURE 2.3": "AI system performance or assurance criteria are measured and demonstrated",
        "MEASURE 2.5": "The AI system is demonstrated to be valid and reliable",
        "MEASURE 2.8": "Risks associated with transparency and accountability are examined and documented",
        "MEASURE 2.9": "The AI model is explained, validated, and documented, and output is interpreted",
        "MEASURE 2.10": "Privacy risk of the AI system is examined and documented",
        "MEASURE 2.11": "Fairness and bias are evaluated and results are documented",
        "MANAGE 1.1": "A determination is made as to whether the AI system achieves its intended purposes",
        "MANAGE 4.1": "Post-deployment monitoring plans are implemented",
    },
    "eu-ai-act-annex-iv": {
        "1(a)": "Intended purpose, provider, version",
        "2(b)": "Design specifications, general logic and key design choices",
        "2(d)": "Data requirements: datasheets, training data provenance, scope and characteristics",
        "2(e)": "Assessment of human oversight measures",
        "2(g)": "Validation and testing procedures, metrics, and signed and dated test reports",
        "3": "Capabilities and limitations in performance, including accuracy for specific groups",
        "6": "Relevant changes made through the lifecycle",
    },
    "iso-42001": {
        "A.5.2": "AI system impact assessment process",
        "A.6.2.2": "AI system requirements and specification",
        "A.6.2.4": "AI system verification and validation",
        "A.6.2.5": "AI system deployment",
        "A.6.2.6": "AI system operation and monitoring",
        "A.6.2.7": "AI system technical documentation",
        "A.6.2.8": "AI system recording of event logs",
        "A.7.4": "Quality of data for AI systems",
        "A.7.5": "Data provenance",
        "A.9.3": "Objectives for responsible use of AI system",
    },
}

TITLES = {
    "nist-ai-rmf": "NIST AI RMF 1.0",
    "eu-ai-act-annex-iv": "EU AI Act, Annex IV",
    "iso-42001": "ISO/IEC 42001:2023, Annex A",
}
