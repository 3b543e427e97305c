using System.Text.Json;

namespace Vauban.Records.Synthetic;

// One patient and their records: identity (INS-NIR consistent with sex, birth date and place),
// insurance, encounters, appointments, prescriptions, lab results, report and invoice.
public sealed partial class SyntheticHospital
{
    // One patient's generation: the state shared by the resource writers of a single call.
    private sealed class PatientRecord(SyntheticHospital hospital, FastRandom rng, long idMs)
    {
        private readonly List<SyntheticResource> _resources = new(12);
        private string _patientReference = "";
        private string _nir = "";
        private DateTime _earliest;
        private Entity _residenceInsurer = null!;

        public List<SyntheticResource> Generate()
        {
            var birth = WritePatient();
            _earliest = Max(hospital._clinicalWindowStart, birth.ToDateTime(new TimeOnly(12, 0), DateTimeKind.Utc).AddDays(1));
            WriteCoverages(birth);

            var encounterCount = rng.Chance(0.5) ? 2 : 1;
            var encounters = new (string Reference, DateTime Start, DateTime End, int Practitioner, char Kind)[encounterCount];
            for (var i = 0; i < encounterCount; i++)
            {
                encounters[i] = WriteEncounter();
            }

            for (var i = ZeroOneOrTwo(); i > 0; i--)
            {
                WriteAppointment();
            }

            for (var i = ZeroOneOrTwo(); i > 0; i--)
            {
                var (reference, start, _, practitioner, _) = rng.Pick(encounters);
                WriteMedicationRequest(reference, start, practitioner);
            }

            // Lab work belongs to the first encounter: observations, then perhaps their report.
            var lab = encounters[0];
            var labTime = Min(lab.Start.AddMinutes(rng.Next(20, 180)), hospital._now);
            var observationCount = rng.Next(1, 4);
            var results = new string[observationCount];
            var chosen = 0UL;
            for (var i = 0; i < observationCount; i++)
            {
                int test;
                do
                {
                    test = rng.Next(FrenchData.LabTests.Length);
                }
                while ((chosen & (1UL << test)) != 0);
                chosen |= 1UL << test;
                results[i] = WriteLabObservation(FrenchData.LabTests[test], lab.Reference, labTime, lab.Practitioner);
            }

            if (rng.Chance(0.3))
            {
                WriteBloodGroup(lab.Reference, labTime, lab.Practitioner);
            }

            if (rng.Chance(0.5))
            {
                WriteDiagnosticReport(results, lab.Reference, labTime, lab.Practitioner);
            }

            if (rng.Chance(0.3))
            {
                var billed = rng.Pick(encounters);
                WriteInvoice(billed.Kind, billed.End);
            }

            return _resources;
        }

        private string NewId() => SyntheticHospital.NewId(rng, idMs);

        private DateOnly WritePatient()
        {
            var data = hospital._data;
            var id = NewId();
            _patientReference = "Patient/" + id;
            var female = rng.Chance(0.52);
            var names = female ? data.FemaleFirstNames : data.MaleFirstNames;
            var given = rng.Pick(names);
            var secondGiven = rng.Chance(0.6) ? rng.Pick(names) : null;
            if (ReferenceEquals(secondGiven, given))
            {
                secondGiven = null;
            }

            var family = rng.Pick(data.LastNames);
            var ageYears = rng.Chance(0.12) ? rng.Next(0, 18) : rng.Next(18, 97);
            var birth = DateOnly.FromDateTime(hospital._now).AddDays(-((ageYears * 365) + rng.Next(1, 365)));

            // Birth place: the INSEE code of the commune (or 99 + country code), which the NIR embeds.
            string birthInsee;
            string? birthCity = null;
            var birthCountry = "FR";
            if (rng.Chance(0.07))
            {
                (birthInsee, birthCountry) = rng.Pick(FrenchData.BirthCountries);
            }
            else
            {
                var city = rng.Chance(0.5) ? hospital._hospitalCity : rng.Pick(FrenchData.Cities);
                birthInsee = Insee(city, rng.Next(city.Districts));
                birthCity = city.Name;
                if (city.IsCorsica && birth.Year < 1976)
                {
                    birthInsee = "20" + birthInsee[2..]; // Corsica was department 20 until 1976
                }
            }

            _nir = MakeNir(female, birth, birthInsee);

            var residence = rng.Chance(0.6) ? Array.IndexOf(FrenchData.Cities, hospital._hospitalCity) : rng.Next(FrenchData.Cities.Length);
            var home = FrenchData.Cities[residence];
            _residenceInsurer = hospital._cityInsurer[residence];
            var adult = ageYears >= 18;
            var married = adult && rng.Chance(ageYears < 30 ? 0.2 : 0.55);
            var usualFamily = female && married && rng.Chance(0.6) ? rng.Pick(data.LastNames) : null;

            var w = SyntheticJson.Begin(PatientType, id);
            w.WriteStartArray(Prop.Extension);
            w.WriteStartObject();
            w.WriteString(Prop.Url, Sys.BirthPlaceExtension);
            w.WriteStartObject(Prop.ValueAddress);
            if (birthCity is not null)
            {
                w.WriteString(Prop.City, birthCity);
            }

            w.WriteString(Prop.Country, birthCountry);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();

            w.WriteStartArray(Prop.Identifier);
            SyntheticJson.Identifier(w, Sys.Official, JsonEncodedText.Encode("INS-NIR"), Sys.InsNir, _nir);
            w.WriteEndArray();
            w.WriteBoolean(Prop.Active, true);

            w.WriteStartArray(Prop.Name);
            w.WriteStartObject();
            w.WriteString(Prop.Use, Sys.Official);
            w.WriteString(Prop.Family, family.Json);
            w.WriteStartArray(Prop.Given);
            w.WriteStringValue(given.Json);
            if (secondGiven is not null)
            {
                w.WriteStringValue(secondGiven.Json);
            }

            w.WriteEndArray();
            w.WriteEndObject();
            if (usualFamily is not null)
            {
                w.WriteStartObject();
                w.WriteString(Prop.Use, Sys.Usual);
                w.WriteString(Prop.Family, usualFamily.Json);
                w.WriteStartArray(Prop.Given);
                w.WriteStringValue(given.Json);
                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();

            w.WriteStartArray(Prop.Telecom);
            var mobile = rng.Chance(0.75);
            SyntheticJson.ContactPoint(w, Sys.Phone, PhoneNumber(rng, mobile ? (rng.Chance(0.8) ? '6' : '7') : home.PhoneZone), mobile ? Sys.Mobile : Sys.Home);
            if (adult && rng.Chance(0.8))
            {
                var domain = rng.Pick(data.EmailDomains);
                var suffix = rng.Chance(0.5) ? rng.Next(1, 100).ToString(System.Globalization.CultureInfo.InvariantCulture) : "";
                SyntheticJson.ContactPoint(w, Sys.Email, $"{given.Slug}.{(usualFamily ?? family).Slug}{suffix}@{domain}", Sys.Home);
            }

            w.WriteEndArray();
            w.WriteString(Prop.Gender, female ? Sys.Female : Sys.Male);
            SyntheticJson.Date(w, Prop.BirthDate, birth);
            var district = rng.Next(home.Districts);
            WriteAddress(w, $"{rng.Next(1, 150)} {rng.Pick(data.Streets)}", PostalCode(home, district), home.Name, Sys.Home);

            var (maritalCode, maritalDisplay) = !adult ? MaritalStatuses[1]
                : married ? MaritalStatuses[0]
                : ageYears > 70 && rng.Chance(0.4) ? MaritalStatuses[3]
                : MaritalStatuses[rng.Chance(0.5) ? 1 : rng.Chance(0.6) ? 2 : 4];
            SyntheticJson.Concept(w, Prop.MaritalStatus, Sys.MaritalStatus, maritalCode, maritalDisplay);

            w.WriteStartArray(Prop.Communication);
            w.WriteStartObject();
            SyntheticJson.Concept(w, Prop.Language, Sys.Bcp47, "fr-FR", "French (France)");
            w.WriteBoolean(Prop.Preferred, true);
            w.WriteEndObject();
            w.WriteEndArray();

            var gp = rng.Pick(hospital._generalPractitioners);
            w.WriteStartArray(Prop.GeneralPractitioner);
            w.WriteStartObject();
            w.WriteString(Prop.Reference, gp.Reference);
            w.WriteString(Prop.Display, gp.Display);
            w.WriteEndObject();
            w.WriteEndArray();
            SyntheticJson.Reference(w, Prop.ManagingOrganization, hospital._hospital.Reference, hospital._hospital.Display);
            Add(w, "Patient", id);
            return birth;
        }

        private string MakeNir(bool female, DateOnly birth, string birthInsee)
        {
            Span<char> nir = stackalloc char[15];
            nir[0] = female ? '2' : '1';
            nir[1] = (char)('0' + (birth.Year % 100 / 10));
            nir[2] = (char)('0' + (birth.Year % 10));
            nir[3] = (char)('0' + (birth.Month / 10));
            nir[4] = (char)('0' + (birth.Month % 10));
            birthInsee.CopyTo(nir[5..]);
            var order = rng.Next(1, 1000);
            nir[10] = (char)('0' + (order / 100));
            nir[11] = (char)('0' + (order / 10 % 10));
            nir[12] = (char)('0' + (order % 10));
            var key = Nir.Key(nir[..13]);
            nir[13] = (char)('0' + (key / 10));
            nir[14] = (char)('0' + (key % 10));
            return new string(nir);
        }

        private void WriteCoverages(DateOnly birth)
        {
            // Basic cover (assurance maladie obligatoire) from the CPAM of residence, subscriber id = NIR.
            WriteCoverage(_residenceInsurer, "PUBLICPOL", "public healthcare", _nir, order: 1, birth);
            if (rng.Chance(0.4))
            {
                // Complementary cover (mutuelle), subscriber id = the member number.
                WriteCoverage(rng.Pick(hospital._mutuelles), "HIP", "health insurance plan policy", Digits(rng, 10), order: 2, birth);
            }
        }

        private void WriteCoverage(Entity payor, string typeCode, string typeDisplay, string subscriberId, int order, DateOnly birth)
        {
            var id = NewId();
            var start = new DateOnly(Math.Max(birth.Year, hospital._now.Year - rng.Next(0, 15)), 1, 1);
            var w = SyntheticJson.Begin(CoverageType, id);
            w.WriteString(Prop.Status, "active");
            SyntheticJson.Concept(w, Prop.Type, Sys.CoverageType, typeCode, typeDisplay);
            w.WriteString(Prop.SubscriberId, subscriberId);
            SyntheticJson.Reference(w, Prop.Beneficiary, _patientReference);
            SyntheticJson.Concept(w, Prop.Relationship, Sys.SubscriberRelationship, "self", "Self");
            w.WriteStartObject(Prop.Period);
            SyntheticJson.Date(w, Prop.Start, start < birth ? birth : start);
            w.WriteEndObject();
            w.WriteStartArray(Prop.Payor);
            w.WriteStartObject();
            w.WriteString(Prop.Reference, payor.Reference);
            w.WriteString(Prop.Display, payor.Display);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteNumber(Prop.Order, order);
            Add(w, "Coverage", id);
        }

        private (string Reference, DateTime Start, DateTime End, int Practitioner, char Kind) WriteEncounter()
        {
            var id = NewId();
            var practitioner = rng.Next(hospital._practitioners.Length);
            var roll = rng.Next(100);
            char kind;
            string code, display, typeText;
            DateTime start, end;
            var day = RandomDay();
            if (roll < 60)
            {
                kind = 'A';
                (code, display, typeText) = ("AMB", "ambulatory", "Consultation externe");
                start = day.AddHours(8 + rng.Next(10)).AddMinutes(15 * rng.Next(4));
                end = start.AddMinutes(15 + (5 * rng.Next(7)));
            }
            else if (roll < 85)
            {
                kind = 'E';
                (code, display, typeText) = ("EMER", "emergency", "Passage aux urgences");
                start = day.AddMinutes(rng.Next(24 * 60));
                end = start.AddMinutes(rng.Next(90, 600));
            }
            else
            {
                kind = 'I';
                (code, display, typeText) = ("IMP", "inpatient encounter", "Hospitalisation complète");
                start = day.AddHours(8 + rng.Next(12)).AddMinutes(rng.Next(60));
                end = start.Date.AddDays(rng.Next(1, 12)).AddHours(9 + rng.Next(7)).AddMinutes(rng.Next(60));
            }

            start = UtcFromParis(start);
            end = UtcFromParis(end);
            var finished = end <= hospital._now;
            var w = SyntheticJson.Begin(EncounterType, id);
            w.WriteString(Prop.Status, finished ? "finished" : "in-progress");
            SyntheticJson.Coding(w, Prop.Class, Sys.ActCode, code, display);
            w.WriteStartArray(Prop.Type);
            w.WriteStartObject();
            w.WriteString(Prop.Text, typeText);
            w.WriteEndObject();
            w.WriteEndArray();
            SyntheticJson.Reference(w, Prop.Subject, _patientReference);
            w.WriteStartArray(Prop.Participant);
            w.WriteStartObject();
            w.WriteStartArray(Prop.Type);
            SyntheticJson.ConceptItem(w, Sys.ParticipationType, "ATND", "attender");
            w.WriteEndArray();
            var doctor = hospital._practitioners[practitioner];
            SyntheticJson.Reference(w, Prop.Individual, doctor.Reference, doctor.Display);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteStartObject(Prop.Period);
            SyntheticJson.DateTime(w, Prop.Start, start);
            if (finished)
            {
                SyntheticJson.DateTime(w, Prop.End, end);
            }

            w.WriteEndObject();
            SyntheticJson.Reference(w, Prop.ServiceProvider, hospital._hospital.Reference, hospital._hospital.Display);
            Add(w, "Encounter", id);
            return ("Encounter/" + id, start, finished ? end : hospital._now, practitioner, kind);
        }

        private void WriteAppointment()
        {
            var id = NewId();
            var practitioner = rng.Next(hospital._practitioners.Length);
            var future = rng.Chance(0.3);
            var day = future ? hospital._now.Date.AddDays(rng.Next(1, 91)) : RandomDay();
            var start = UtcFromParis(day.AddHours(8 + rng.Next(10)).AddMinutes(15 * rng.Next(4)));
            var minutes = 15 + (15 * rng.Next(3));
            var status = future ? "booked" : rng.Chance(0.82) ? "fulfilled" : "cancelled";
            var (specialtyCode, specialtyDisplay) = FrenchData.Specialties[hospital._practitionerSpecialty[practitioner]];
            var doctor = hospital._practitioners[practitioner];

            var w = SyntheticJson.Begin(AppointmentType, id);
            w.WriteString(Prop.Status, status);
            SyntheticJson.ConceptArray(w, Prop.Specialty, Sys.Snomed, specialtyCode, specialtyDisplay);
            w.WriteString(Prop.Description, "Consultation - " + specialtyDisplay);
            SyntheticJson.DateTime(w, Prop.Start, start);
            SyntheticJson.DateTime(w, Prop.End, start.AddMinutes(minutes));
            w.WriteNumber(Prop.MinutesDuration, minutes);
            SyntheticJson.DateTime(w, Prop.Created, Max(_earliest, Min(start.AddDays(-rng.Next(1, 60)), hospital._now)));
            w.WriteStartArray(Prop.Participant);
            WriteParticipant(w, _patientReference, null);
            WriteParticipant(w, doctor.Reference, doctor.Display);
            w.WriteEndArray();
            Add(w, "Appointment", id);

            static void WriteParticipant(Utf8JsonWriter w, string reference, string? display)
            {
                w.WriteStartObject();
                if (display is null)
                {
                    SyntheticJson.Reference(w, Prop.Actor, reference);
                }
                else
                {
                    SyntheticJson.Reference(w, Prop.Actor, reference, display);
                }

                w.WriteString(Prop.Required, "required");
                w.WriteString(Prop.Status, "accepted");
                w.WriteEndObject();
            }
        }

        private void WriteMedicationRequest(string encounter, DateTime encounterStart, int practitioner)
        {
            var id = NewId();
            var (name, atc, dosage) = rng.Pick(FrenchData.Drugs);
            var authored = Min(encounterStart.AddMinutes(rng.Next(5, 60)), hospital._now);
            var recent = hospital._now - authored < TimeSpan.FromDays(90);
            var status = recent ? "active" : rng.Chance(0.9) ? "completed" : "stopped";
            var doctor = hospital._practitioners[practitioner];

            var w = SyntheticJson.Begin(MedicationRequestType, id);
            w.WriteString(Prop.Status, status);
            w.WriteString(Prop.Intent, "order");
            w.WriteStartObject(Prop.MedicationCodeableConcept);
            w.WriteStartArray(Prop.Coding);
            w.WriteStartObject();
            w.WriteString(Prop.System, Sys.Atc);
            w.WriteString(Prop.Code, atc);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteString(Prop.Text, name);
            w.WriteEndObject();
            SyntheticJson.Reference(w, Prop.Subject, _patientReference);
            SyntheticJson.Reference(w, Prop.Encounter, encounter);
            SyntheticJson.DateTime(w, Prop.AuthoredOn, authored);
            SyntheticJson.Reference(w, Prop.Requester, doctor.Reference, doctor.Display);
            w.WriteStartArray(Prop.DosageInstruction);
            w.WriteStartObject();
            w.WriteString(Prop.Text, dosage);
            w.WriteEndObject();
            w.WriteEndArray();
            Add(w, "MedicationRequest", id);
        }

        private string WriteLabObservation(FrenchData.LabTest test, string encounter, DateTime effective, int practitioner)
        {
            var id = NewId();
            // Mostly normal results, some outside the reference range.
            var value = rng.Chance(0.75)
                ? test.Low + ((test.High - test.Low) * rng.NextDouble())
                : test.Min + ((test.Max - test.Min) * rng.NextDouble());
            value = Math.Round(value, test.Decimals);
            var interpretation = value < test.Low ? ("L", "Low") : value > test.High ? ("H", "High") : ("N", "Normal");

            var w = BeginObservation(id, test.Loinc, test.Display, encounter, effective, practitioner);
            SyntheticJson.Quantity(w, Prop.ValueQuantity, value, test.Decimals, test.Unit);
            SyntheticJson.ConceptArray(w, Prop.Interpretation, Sys.ObservationInterpretation, interpretation.Item1, interpretation.Item2);
            w.WriteStartArray(Prop.ReferenceRange);
            w.WriteStartObject();
            SyntheticJson.Quantity(w, Prop.Low, test.Low, test.Decimals, test.Unit);
            SyntheticJson.Quantity(w, Prop.High, test.High, test.Decimals, test.Unit);
            w.WriteEndObject();
            w.WriteEndArray();
            Add(w, "Observation", id);
            return "Observation/" + id;
        }

        private void WriteBloodGroup(string encounter, DateTime effective, int practitioner)
        {
            var id = NewId();
            var roll = rng.Next(1000);
            var group = FrenchData.BloodGroups[^1];
            foreach (var candidate in FrenchData.BloodGroups)
            {
                if ((roll -= candidate.PerMille) < 0)
                {
                    group = candidate;
                    break;
                }
            }

            var w = BeginObservation(id, "882-1", "ABO and Rh group [Type] in Blood", encounter, effective, practitioner);
            SyntheticJson.Concept(w, Prop.ValueCodeableConcept, Sys.Snomed, group.Snomed, group.Display);
            Add(w, "Observation", id);
        }

        private Utf8JsonWriter BeginObservation(string id, string loinc, string display, string encounter, DateTime effective, int practitioner)
        {
            var doctor = hospital._practitioners[practitioner];
            var w = SyntheticJson.Begin(ObservationType, id);
            w.WriteString(Prop.Status, "final");
            SyntheticJson.ConceptArray(w, Prop.Category, Sys.ObservationCategory, "laboratory", "Laboratory");
            SyntheticJson.Concept(w, Prop.Code, Sys.Loinc, loinc, display);
            SyntheticJson.Reference(w, Prop.Subject, _patientReference);
            SyntheticJson.Reference(w, Prop.Encounter, encounter);
            SyntheticJson.DateTime(w, Prop.EffectiveDateTime, effective);
            SyntheticJson.DateTime(w, Prop.Issued, Min(effective.AddHours(3), hospital._now));
            w.WriteStartArray(Prop.Performer);
            w.WriteStartObject();
            w.WriteString(Prop.Reference, doctor.Reference);
            w.WriteString(Prop.Display, doctor.Display);
            w.WriteEndObject();
            w.WriteEndArray();
            return w;
        }

        private void WriteDiagnosticReport(string[] results, string encounter, DateTime effective, int practitioner)
        {
            var id = NewId();
            var doctor = hospital._practitioners[practitioner];
            var w = SyntheticJson.Begin(DiagnosticReportType, id);
            w.WriteString(Prop.Status, "final");
            SyntheticJson.ConceptArray(w, Prop.Category, Sys.DiagnosticServiceSection, "LAB", "Laboratory");
            SyntheticJson.Concept(w, Prop.Code, Sys.Loinc, "11502-2", "Laboratory report");
            SyntheticJson.Reference(w, Prop.Subject, _patientReference);
            SyntheticJson.Reference(w, Prop.Encounter, encounter);
            SyntheticJson.DateTime(w, Prop.EffectiveDateTime, effective);
            SyntheticJson.DateTime(w, Prop.Issued, Min(effective.AddHours(4), hospital._now));
            w.WriteStartArray(Prop.Performer);
            w.WriteStartObject();
            w.WriteString(Prop.Reference, doctor.Reference);
            w.WriteString(Prop.Display, doctor.Display);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteStartArray(Prop.Result);
            foreach (var result in results)
            {
                w.WriteStartObject();
                w.WriteString(Prop.Reference, result);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            Add(w, "DiagnosticReport", id);
        }

        private void WriteInvoice(char encounterKind, DateTime date)
        {
            var id = NewId();
            var amount = encounterKind switch
            {
                'A' => 25 + (5 * rng.Next(8)),
                'E' => rng.Next(80, 450),
                _ => rng.Next(900, 9000),
            } + (rng.Next(100) / 100.0);
            var w = SyntheticJson.Begin(InvoiceType, id);
            w.WriteString(Prop.Status, "issued");
            SyntheticJson.Reference(w, Prop.Subject, _patientReference);
            SyntheticJson.Reference(w, Prop.Recipient, _patientReference);
            SyntheticJson.DateTime(w, Prop.Date, Min(date.AddDays(rng.Next(0, 5)), hospital._now));
            SyntheticJson.Reference(w, Prop.Issuer, hospital._hospital.Reference, hospital._hospital.Display);
            WriteMoney(w, Prop.TotalNet, amount);
            WriteMoney(w, Prop.TotalGross, amount);
            w.WriteString(Prop.PaymentTerms, "Paiement à réception, tiers payant pour la part obligatoire");
            Add(w, "Invoice", id);

            static void WriteMoney(Utf8JsonWriter w, JsonEncodedText property, double value)
            {
                w.WriteStartObject(property);
                w.WriteNumber(Prop.Value, Math.Round(value, 2));
                w.WriteString(Prop.Currency, Sys.Eur);
                w.WriteEndObject();
            }
        }

        private void Add(Utf8JsonWriter w, string resourceType, string id) => _resources.Add(SyntheticJson.End(w, resourceType, id));

        // A day (UTC midnight) in the clinical window: the two years before "now", after birth.
        private DateTime RandomDay()
        {
            var days = Math.Max(1, (int)(hospital._now.Date - _earliest.Date).TotalDays);
            return _earliest.Date.AddDays(rng.Next(days));
        }

        private int ZeroOneOrTwo()
        {
            var roll = rng.Next(100);
            return roll < 15 ? 0 : roll < 85 ? 1 : 2;
        }

        // Clinical times are drawn as Paris wall-clock times; stored instants are UTC. Read as ParisTime reads any (a time the clocks
        // show twice is the first, one they skip the instant they jump at).
        private static DateTime UtcFromParis(DateTime local) => DateTime.UnixEpoch.AddMilliseconds(ParisTime.UnixMillisecondsAt(
            ParisTime.WallClock(DateOnly.FromDateTime(local).DayNumber, local.TimeOfDay.Ticks / TimeSpan.TicksPerMillisecond), out _));

        private static DateTime Max(DateTime a, DateTime b) => a > b ? a : b;

        private static DateTime Min(DateTime a, DateTime b) => a < b ? a : b;
    }
}
