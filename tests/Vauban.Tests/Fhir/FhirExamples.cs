// Realistic, valid FHIR R4 resources for a French care setting, one (or more) per supported type.
// Every person and number here is invented; identifiers use the French OIDs (INS-NIR, RPPS, FINESS)
// with made-up values.

namespace Vauban.Tests.Fhir;

internal static class FhirExamples
{
    public const string Patient = """
        {
          "resourceType": "Patient",
          "id": "pat-0001",
          "meta": {
            "versionId": "3",
            "lastUpdated": "2024-03-12T09:41:07.512+01:00",
            "profile": ["https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient"],
            "security": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N" }]
          },
          "language": "fr-FR",
          "text": {
            "status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Marie-Claire DUPONT, née le 14/02/1980</div>"
          },
          "extension": [
            {
              "url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-place",
              "valueAddress": { "city": "Lyon", "postalCode": "69003", "country": "FR" }
            },
            {
              "url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-nationality",
              "extension": [{ "url": "code", "valueCodeableConcept": { "coding": [{ "system": "urn:iso:std:iso:3166", "code": "FR" }] } }]
            }
          ],
          "identifier": [
            {
              "use": "official",
              "type": { "coding": [{ "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "INS-NIR" }] },
              "system": "urn:oid:1.2.250.1.213.1.4.8",
              "value": "280026912345678"
            },
            { "use": "usual", "system": "urn:oid:1.2.250.1.71.4.2.7", "value": "IPP-000123" }
          ],
          "active": true,
          "name": [
            {
              "use": "official",
              "family": "Dupont",
              "given": ["Marie", "Claire"],
              "_given": [null, { "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier", "valueCode": "CL" }] }],
              "prefix": ["Mme"]
            },
            { "use": "maiden", "family": "Martin", "given": ["Marie"], "period": { "end": "2006-06-17" } }
          ],
          "telecom": [
            { "system": "phone", "value": "+33 6 12 34 56 78", "use": "mobile", "rank": 1 },
            { "system": "email", "value": "marie.dupont@example.fr", "use": "home" }
          ],
          "gender": "female",
          "birthDate": "1980-02-14",
          "_birthDate": { "extension": [{ "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1980-02-14T06:25:00+01:00" }] },
          "deceasedBoolean": false,
          "address": [
            {
              "use": "home",
              "type": "physical",
              "line": ["12 rue de la République", "Bâtiment B"],
              "city": "Lyon",
              "postalCode": "69002",
              "country": "FR",
              "period": { "start": "2015-09-01" }
            }
          ],
          "maritalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M", "display": "Married" }] },
          "multipleBirthInteger": 1,
          "contact": [
            {
              "relationship": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N" }], "text": "Personne à prévenir" }],
              "name": { "family": "Dupont", "given": ["Jean"] },
              "telecom": [{ "system": "phone", "value": "+33 4 78 00 00 00" }],
              "gender": "male"
            }
          ],
          "communication": [
            { "language": { "coding": [{ "system": "urn:ietf:bcp:47", "code": "fr-FR", "display": "Français (France)" }] }, "preferred": true }
          ],
          "generalPractitioner": [{ "reference": "Practitioner/pra-0042", "display": "Dr Paul Lefèvre" }],
          "managingOrganization": { "reference": "Organization/org-hcl", "identifier": { "system": "urn:oid:1.2.250.1.71.4.2.2", "value": "690781810" } }
        }
        """;

    public const string Practitioner = """
        {
          "resourceType": "Practitioner",
          "id": "pra-0042",
          "identifier": [
            {
              "use": "official",
              "type": { "coding": [{ "system": "http://interopsante.org/fhir/CodeSystem/fr-v2-0203", "code": "RPPS" }] },
              "system": "urn:oid:1.2.250.1.71.4.2.1",
              "value": "810002345678"
            }
          ],
          "active": true,
          "name": [{ "use": "official", "family": "Lefèvre", "given": ["Paul"], "prefix": ["Dr"] }],
          "telecom": [
            { "system": "phone", "value": "+33 4 72 11 22 33", "use": "work" },
            { "system": "email", "value": "paul.lefevre@medecin.mssante.fr", "use": "work" }
          ],
          "address": [{ "use": "work", "line": ["3 place Bellecour"], "city": "Lyon", "postalCode": "69002", "country": "FR" }],
          "gender": "male",
          "birthDate": "1971-11",
          "qualification": [
            {
              "identifier": [{ "system": "urn:oid:1.2.250.1.213.1.1.4.5", "value": "DES-MG-1999" }],
              "code": { "coding": [{ "system": "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale", "code": "SM54", "display": "Médecine générale (SM)" }] },
              "period": { "start": "1999-10-01" },
              "issuer": { "display": "Université Claude Bernard Lyon 1" }
            }
          ],
          "communication": [{ "coding": [{ "system": "urn:ietf:bcp:47", "code": "fr" }] }]
        }
        """;

    public const string PractitionerRole = """
        {
          "resourceType": "PractitionerRole",
          "id": "prr-0042-cabinet",
          "active": true,
          "period": { "start": "2005-01-03" },
          "practitioner": { "reference": "Practitioner/pra-0042" },
          "organization": { "reference": "Organization/org-cabinet-bellecour" },
          "code": [{ "coding": [{ "system": "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante", "code": "10", "display": "Médecin" }] }],
          "specialty": [{ "coding": [{ "system": "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale", "code": "SM54" }] }],
          "telecom": [{ "system": "phone", "value": "+33 4 72 11 22 33", "use": "work" }],
          "availableTime": [
            { "daysOfWeek": ["mon", "tue", "thu", "fri"], "availableStartTime": "08:30:00", "availableEndTime": "12:00:00" },
            { "daysOfWeek": ["wed"], "allDay": false, "availableStartTime": "14:00:00", "availableEndTime": "19:30:00" }
          ],
          "notAvailable": [{ "description": "Congés d'été", "during": { "start": "2024-08-01", "end": "2024-08-21" } }],
          "availabilityExceptions": "Fermé les jours fériés"
        }
        """;

    public const string Organization = """
        {
          "resourceType": "Organization",
          "id": "org-hcl",
          "identifier": [
            { "use": "official", "system": "urn:oid:1.2.250.1.71.4.2.2", "value": "690781810" },
            { "system": "http://sirene.fr/siret", "value": "26690027400013" }
          ],
          "active": true,
          "type": [{ "coding": [{ "system": "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/TRE-R66-CategorieEtablissement", "code": "101", "display": "Centre Hospitalier Régional (C.H.R.)" }] }],
          "name": "Hospices Civils de Lyon",
          "alias": ["HCL"],
          "telecom": [{ "system": "phone", "value": "+33 8 25 08 25 69" }, { "system": "url", "value": "https://www.chu-lyon.fr" }],
          "address": [{ "line": ["3 quai des Célestins"], "city": "Lyon", "postalCode": "69002", "country": "FR" }],
          "contact": [
            {
              "purpose": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/contactentity-type", "code": "ADMIN" }] },
              "name": { "text": "Délégué à la protection des données" },
              "telecom": [{ "system": "email", "value": "dpo@chu-lyon.fr" }]
            }
          ]
        }
        """;

    public const string Encounter = """
        {
          "resourceType": "Encounter",
          "id": "enc-2024-0815",
          "identifier": [{ "system": "urn:oid:1.2.250.1.71.4.2.2.690781810.sejour", "value": "S24-0815" }],
          "status": "finished",
          "statusHistory": [{ "status": "in-progress", "period": { "start": "2024-03-10T14:05:00+01:00", "end": "2024-03-12T10:30:00+01:00" } }],
          "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP", "display": "inpatient encounter" },
          "type": [{ "text": "Hospitalisation complète" }],
          "priority": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActPriority", "code": "EM" }] },
          "subject": { "reference": "Patient/pat-0001" },
          "participant": [
            {
              "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "ATND" }] }],
              "period": { "start": "2024-03-10T14:05:00+01:00" },
              "individual": { "reference": "Practitioner/pra-0042" }
            }
          ],
          "period": { "start": "2024-03-10T14:05:00+01:00", "end": "2024-03-12T10:30:00+01:00" },
          "length": { "value": 2, "unit": "jours", "system": "http://unitsofmeasure.org", "code": "d" },
          "reasonCode": [{ "text": "Douleur thoracique" }],
          "diagnosis": [{ "condition": { "display": "Angor stable" }, "rank": 1 }],
          "hospitalization": {
            "admitSource": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/admit-source", "code": "emd" }] },
            "dischargeDisposition": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition", "code": "home" }] }
          },
          "location": [{ "location": { "display": "Cardiologie, 4e étage, chambre 412" }, "status": "completed" }],
          "serviceProvider": { "reference": "Organization/org-hcl" }
        }
        """;

    public const string CareTeam = """
        {
          "resourceType": "CareTeam",
          "id": "ct-pat-0001",
          "status": "active",
          "category": [{ "coding": [{ "system": "http://loinc.org", "code": "LA27976-2", "display": "Encounter-focused care team" }] }],
          "name": "Équipe de soins de Mme Dupont",
          "subject": { "reference": "Patient/pat-0001" },
          "encounter": { "reference": "Encounter/enc-2024-0815" },
          "period": { "start": "2024-03-10" },
          "participant": [
            {
              "role": [{ "text": "Médecin traitant" }],
              "member": { "reference": "Practitioner/pra-0042" },
              "onBehalfOf": { "reference": "Organization/org-cabinet-bellecour" }
            },
            { "role": [{ "text": "Infirmière coordinatrice" }], "member": { "display": "Sophie Bernard" }, "period": { "start": "2024-03-10" } }
          ],
          "managingOrganization": [{ "reference": "Organization/org-hcl" }],
          "note": [{ "authorString": "Dr Lefèvre", "time": "2024-03-10T15:00:00+01:00", "text": "Suivi **cardiologique** à 3 mois." }]
        }
        """;

    public const string Appointment = """
        {
          "resourceType": "Appointment",
          "id": "rdv-2024-04-02",
          "status": "booked",
          "serviceType": [{ "text": "Consultation de médecine générale" }],
          "appointmentType": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": "FOLLOWUP" }] },
          "reasonCode": [{ "text": "Contrôle tensionnel" }],
          "priority": 5,
          "description": "Consultation de suivi",
          "start": "2024-04-02T09:00:00+02:00",
          "end": "2024-04-02T09:20:00+02:00",
          "minutesDuration": 20,
          "created": "2024-03-12",
          "comment": "Apporter les derniers résultats de biologie",
          "participant": [
            { "actor": { "reference": "Patient/pat-0001" }, "required": "required", "status": "accepted" },
            { "type": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PPRF" }] }], "actor": { "reference": "Practitioner/pra-0042" }, "status": "accepted" }
          ],
          "requestedPeriod": [{ "start": "2024-04-01", "end": "2024-04-05" }]
        }
        """;

    public const string MedicationRequest = """
        {
          "resourceType": "MedicationRequest",
          "id": "ord-0001",
          "contained": [
            {
              "resourceType": "Organization",
              "id": "pharma",
              "name": "Pharmacie du Rhône"
            }
          ],
          "identifier": [{ "system": "urn:oid:1.2.250.1.213.1.1.9", "value": "ORD-2024-000981" }],
          "status": "active",
          "intent": "order",
          "medicationCodeableConcept": {
            "coding": [{ "system": "http://data.esante.gouv.fr/ansm/medicament/codeCIS", "code": "60234100", "display": "DOLIPRANE 1000 mg, comprimé" }],
            "text": "Paracétamol 1 g comprimé"
          },
          "subject": { "reference": "Patient/pat-0001", "display": "Marie-Claire Dupont" },
          "encounter": { "reference": "Encounter/enc-2024-0815" },
          "authoredOn": "2024-03-12T10:15:00+01:00",
          "requester": { "reference": "Practitioner/pra-0042" },
          "reasonCode": [{ "text": "Douleurs" }],
          "note": [{ "text": "Ne pas dépasser 3 g par jour." }],
          "dosageInstruction": [
            {
              "sequence": 1,
              "text": "1 comprimé toutes les 8 heures si douleur",
              "timing": { "repeat": { "boundsDuration": { "value": 5, "unit": "jours", "system": "http://unitsofmeasure.org", "code": "d" }, "frequency": 1, "period": 8, "periodUnit": "h" } },
              "asNeededBoolean": true,
              "route": { "coding": [{ "system": "http://standardterms.edqm.eu", "code": "20053000", "display": "Voie orale" }] },
              "doseAndRate": [{ "doseQuantity": { "value": 1, "unit": "comprimé", "system": "http://unitsofmeasure.org", "code": "{tbl}" } }],
              "maxDosePerPeriod": { "numerator": { "value": 3, "unit": "g" }, "denominator": { "value": 1, "unit": "j" } }
            }
          ],
          "dispenseRequest": {
            "validityPeriod": { "start": "2024-03-12", "end": "2024-06-12" },
            "numberOfRepeatsAllowed": 0,
            "quantity": { "value": 16, "unit": "comprimés" },
            "expectedSupplyDuration": { "value": 5, "unit": "jours", "system": "http://unitsofmeasure.org", "code": "d" },
            "performer": { "reference": "#pharma" }
          },
          "substitution": { "allowedBoolean": true, "reason": { "text": "Générique autorisé" } }
        }
        """;

    public const string Observation = """
        {
          "resourceType": "Observation",
          "id": "obs-hb-0001",
          "status": "final",
          "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
          "code": { "coding": [{ "system": "http://loinc.org", "code": "718-7", "display": "Hémoglobine [Masse/Volume] Sang" }] },
          "subject": { "reference": "Patient/pat-0001" },
          "encounter": { "reference": "Encounter/enc-2024-0815" },
          "effectiveDateTime": "2024-03-11T07:30:00+01:00",
          "issued": "2024-03-11T11:02:45.120+01:00",
          "performer": [{ "reference": "Organization/org-hcl" }],
          "valueQuantity": { "value": 13.2, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL" },
          "interpretation": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N" }] }],
          "specimen": { "display": "Sang veineux" },
          "referenceRange": [
            {
              "low": { "value": 12.0, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL" },
              "high": { "value": 16.0, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL" },
              "appliesTo": [{ "text": "Femme adulte" }],
              "age": { "low": { "value": 18, "unit": "a" } }
            }
          ]
        }
        """;

    public const string BloodPressureObservation = """
        {
          "resourceType": "Observation",
          "status": "final",
          "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs" }] }],
          "code": { "coding": [{ "system": "http://loinc.org", "code": "85354-9", "display": "Pression artérielle" }] },
          "subject": { "reference": "Patient/pat-0001" },
          "effectivePeriod": { "start": "2024-03-12T08:00:00+01:00", "end": "2024-03-12T08:05:00+01:00" },
          "bodySite": { "text": "Bras gauche" },
          "component": [
            {
              "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6", "display": "Pression systolique" }] },
              "valueQuantity": { "value": 128, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" },
              "referenceRange": [{ "high": { "value": 140, "unit": "mmHg" } }]
            },
            {
              "code": { "coding": [{ "system": "http://loinc.org", "code": "8462-4", "display": "Pression diastolique" }] },
              "valueQuantity": { "value": 82, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]" }
            }
          ]
        }
        """;

    public const string DiagnosticReport = """
        {
          "resourceType": "DiagnosticReport",
          "id": "cr-nfs-0001",
          "identifier": [{ "system": "urn:oid:1.2.250.1.71.4.2.2.690781810.labo", "value": "L24-031100452" }],
          "status": "final",
          "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "HM", "display": "Hématologie" }] }],
          "code": { "coding": [{ "system": "http://loinc.org", "code": "58410-2", "display": "Numération formule sanguine" }] },
          "subject": { "reference": "Patient/pat-0001" },
          "encounter": { "reference": "Encounter/enc-2024-0815" },
          "effectivePeriod": { "start": "2024-03-11T07:30:00+01:00", "end": "2024-03-11T07:35:00+01:00" },
          "issued": "2024-03-11T11:05:00+01:00",
          "performer": [{ "reference": "Organization/org-hcl", "display": "Laboratoire de biologie médicale, HCL" }],
          "resultsInterpreter": [{ "reference": "Practitioner/pra-0042" }],
          "result": [{ "reference": "Observation/obs-hb-0001" }],
          "conclusion": "Pas d'anémie.",
          "conclusionCode": [{ "text": "Normal" }],
          "presentedForm": [
            {
              "contentType": "application/pdf",
              "language": "fr-FR",
              "data": "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==",
              "title": "Compte rendu NFS",
              "creation": "2024-03-11T11:05:00+01:00",
              "size": 52
            }
          ]
        }
        """;

    public const string DocumentReference = """
        {
          "resourceType": "DocumentReference",
          "id": "doc-lettre-sortie",
          "masterIdentifier": { "system": "urn:ietf:rfc:3986", "value": "urn:uuid:0f3c1a52-7d7e-4a1e-9d7b-5b2b8f6c1e21" },
          "status": "current",
          "docStatus": "final",
          "type": { "coding": [{ "system": "http://loinc.org", "code": "11490-0", "display": "Lettre de sortie" }] },
          "category": [{ "text": "Compte rendu" }],
          "subject": { "reference": "Patient/pat-0001" },
          "date": "2024-03-12T11:00:00+01:00",
          "author": [{ "reference": "Practitioner/pra-0042" }],
          "custodian": { "reference": "Organization/org-hcl" },
          "description": "Lettre de liaison à la sortie",
          "securityLabel": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R" }] }],
          "content": [
            {
              "attachment": { "contentType": "application/pdf", "url": "Binary/bin-lettre-sortie", "size": 48213, "hash": "2jmj7l5rSw0yVb/vlWAYkK/YBwk=", "title": "Lettre de sortie" },
              "format": { "system": "http://ihe.net/fhir/ValueSet/IHE.FormatCode.codesystem", "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient" }
            }
          ],
          "context": {
            "encounter": [{ "reference": "Encounter/enc-2024-0815" }],
            "period": { "start": "2024-03-10", "end": "2024-03-12" },
            "facilityType": { "text": "Centre hospitalier universitaire" },
            "practiceSetting": { "text": "Cardiologie" }
          }
        }
        """;

    public const string Coverage = """
        {
          "resourceType": "Coverage",
          "id": "cov-amo-0001",
          "identifier": [{ "system": "urn:oid:1.2.250.1.213.1.4.8", "value": "280026912345678" }],
          "status": "active",
          "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PUBLICPOL", "display": "Assurance maladie obligatoire" }] },
          "subscriber": { "reference": "Patient/pat-0001" },
          "beneficiary": { "reference": "Patient/pat-0001" },
          "relationship": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self" }] },
          "period": { "start": "2024-01-01", "end": "2024-12-31" },
          "payor": [{ "display": "CPAM du Rhône", "identifier": { "system": "urn:oid:1.2.250.1.215.100.1", "value": "691" } }],
          "class": [{ "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "plan" }] }, "value": "ALD", "name": "Affection de longue durée" }],
          "order": 1,
          "costToBeneficiary": [
            {
              "type": { "text": "Ticket modérateur" },
              "valueMoney": { "value": 0, "currency": "EUR" },
              "exception": [{ "type": { "text": "Exonération ALD" }, "period": { "start": "2024-01-01" } }]
            }
          ]
        }
        """;

    public const string Invoice = """
        {
          "resourceType": "Invoice",
          "id": "fac-2024-000321",
          "identifier": [{ "system": "urn:oid:1.2.250.1.71.4.2.2.690781810.facture", "value": "F24-000321" }],
          "status": "issued",
          "type": { "text": "Feuille de soins électronique" },
          "subject": { "reference": "Patient/pat-0001" },
          "recipient": { "reference": "Organization/org-cpam-69" },
          "date": "2024-04-02T09:25:00+02:00",
          "participant": [{ "role": { "text": "Médecin exécutant" }, "actor": { "reference": "Practitioner/pra-0042" } }],
          "issuer": { "reference": "Organization/org-cabinet-bellecour" },
          "lineItem": [
            {
              "sequence": 1,
              "chargeItemCodeableConcept": { "coding": [{ "system": "https://www.ameli.fr/ngap", "code": "G", "display": "Consultation de médecine générale" }] },
              "priceComponent": [
                { "type": "base", "amount": { "value": 30.00, "currency": "EUR" } },
                { "type": "deduction", "code": { "text": "Participation forfaitaire" }, "factor": 1, "amount": { "value": 2.00, "currency": "EUR" } }
              ]
            }
          ],
          "totalNet": { "value": 28.00, "currency": "EUR" },
          "totalGross": { "value": 30.00, "currency": "EUR" },
          "paymentTerms": "Tiers payant",
          "note": [{ "text": "Télétransmise via SESAM-Vitale." }]
        }
        """;

    public static TheoryData<string, string> All => new()
    {
        { "Patient", Patient },
        { "Practitioner", Practitioner },
        { "PractitionerRole", PractitionerRole },
        { "Organization", Organization },
        { "Encounter", Encounter },
        { "CareTeam", CareTeam },
        { "Appointment", Appointment },
        { "MedicationRequest", MedicationRequest },
        { "Observation", Observation },
        { "Observation (blood pressure)", BloodPressureObservation },
        { "DiagnosticReport", DiagnosticReport },
        { "DocumentReference", DocumentReference },
        { "Coverage", Coverage },
        { "Invoice", Invoice },
    };
}
